import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

export interface ChartSeries {
  label: string
  values: Array<number | null>
  /** A CSS custom property holding the colour, e.g. --c-hits. */
  color: string
}

const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'

/** A uPlot time-series chart that follows its container's width and the theme. */
export function Chart(props: { title: string; times: number[]; series: ChartSeries[]; yLabel: string; testId?: string; max?: number; points?: boolean }) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)

  useEffect(() => {
    const el = box.current
    if (!el) return
    const build = () => {
      plot.current?.destroy()
      const axis = { stroke: cssVar('--fg-muted'), grid: { stroke: cssVar('--grid') }, ticks: { stroke: cssVar('--grid') } }
      const opts: uPlot.Options = {
        title: props.title,
        width: Math.max(300, el.clientWidth),
        height: 240,
        scales: { x: { time: true }, ...(props.max !== undefined ? { y: { range: [0, props.max] } } : {}) },
        axes: [axis, { ...axis, label: props.yLabel }],
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: cssVar(s.color), width: 2, points: { show: props.points ?? false, size: 5 } }))],
      }
      plot.current = new uPlot(opts, [props.times, ...props.series.map((s) => s.values)] as uPlot.AlignedData, el)
    }
    build()
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(300, el.clientWidth), height: 240 }))
    resize.observe(el)
    addEventListener('dynacache-theme', build)
    const media = matchMedia('(prefers-color-scheme: dark)')
    media.addEventListener('change', build)
    return () => {
      resize.disconnect()
      removeEventListener('dynacache-theme', build)
      media.removeEventListener('change', build)
      plot.current?.destroy()
      plot.current = null
    }
  }, [props.title, props.times, props.series, props.yLabel, props.max, props.points])

  return <div class="chart" ref={box} data-testid={props.testId} />
}
