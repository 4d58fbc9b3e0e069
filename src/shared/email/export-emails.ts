import type { ExportRecord } from '../exports/model.ts'
import type { EmailMessage } from './sender.ts'

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

/** 1536 -> "1.5 KB": sizes for people, in powers of 1024. */
export function humanBytes(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`
}

function describeExport(record: ExportRecord): string {
  return `table ${record.table}${record.index ? ` (index ${record.index})` : ''}, ${record.format.toUpperCase()}${record.gzip ? ' (gzip)' : ''}`
}

/** The email for a finished export: table, rows, size and the signed download link with its expiry. */
export function completedEmail(record: ExportRecord, link: { url: string; expiresAt: number }): Omit<EmailMessage, 'to'> {
  const what = describeExport(record)
  const rows = record.processedItems.toLocaleString('en-US')
  const size = humanBytes(record.bytes ?? 0)
  const expires = new Date(link.expiresAt).toISOString()
  return {
    subject: `Your export of ${record.table} is ready`,
    text: [
      `Your export of ${what} is ready.`,
      '',
      `Rows: ${rows}`,
      `Size: ${size}`,
      `Download: ${link.url}`,
      '',
      `The link works until ${expires}. Export id: ${record.id}.`,
    ].join('\n'),
    html: [
      `<p>Your export of ${escapeHtml(what)} is ready.</p>`,
      `<ul><li>Rows: ${rows}</li><li>Size: ${escapeHtml(size)}</li></ul>`,
      `<p><a href="${escapeHtml(link.url)}">Download the file</a> (the link works until ${expires}).</p>`,
      `<p>Export id: ${escapeHtml(record.id)}</p>`,
    ].join('\n'),
  }
}

/** The email for an export that failed, with the reason. */
export function failedEmail(record: ExportRecord): Omit<EmailMessage, 'to'> {
  const what = describeExport(record)
  const reason = record.error ?? 'unknown error'
  return {
    subject: `Your export of ${record.table} failed`,
    text: [`Your export of ${what} failed.`, '', `Reason: ${reason}`, '', `Export id: ${record.id}.`].join('\n'),
    html: [`<p>Your export of ${escapeHtml(what)} failed.</p>`, `<p>Reason: ${escapeHtml(reason)}</p>`, `<p>Export id: ${escapeHtml(record.id)}</p>`].join(
      '\n',
    ),
  }
}
