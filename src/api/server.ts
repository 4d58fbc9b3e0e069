import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from '../shared/config.ts'
import { buildApp } from './app.ts'

const config = loadConfigOrExit('api')
const app = await buildApp(config)

closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger: app.log }, async ({ signal, err }) => {
  if (err) app.log.error({ msg: 'api.crashed', err })
  else app.log.info({ msg: 'api.stopping', signal })
  await app.close()
})

await app.listen({ port: config.PORT, host: config.HOST })
