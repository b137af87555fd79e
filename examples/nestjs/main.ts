/**
 * cachette in a NestJS app: a cached page, a memoized service method and
 * invalidation from the service. Runs on the embedded SimpleCache:
 *
 *   npx tsx --tsconfig examples/nestjs/tsconfig.json examples/nestjs/main.ts            # Express
 *   PLATFORM=fastify npx tsx --tsconfig examples/nestjs/tsconfig.json examples/nestjs/main.ts
 *
 * then open http://localhost:3000/users/1 twice (the second is a hit: same
 * `renderedAt`), and `curl -X POST localhost:3000/users/1/rename?name=Ada`
 * to see the page and the memoized user forgotten. Nest projects compile
 * with `emitDecoratorMetadata`; tsx does not emit it, so the constructor
 * parameters here name their providers with `@Inject()`.
 */
import 'reflect-metadata'
import { Controller, Get, Inject, Injectable, Module, Param, Post, Query } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { Cached, CachetteModule, Memoize } from '../../src/frameworks/nestjs/index.js'
import { Cache } from '../../src/index.js'

const names = new Map<number, string>([[1, 'Grace']])

@Injectable()
class UsersService {
  constructor(@Inject(Cache) private readonly cache: Cache) {}

  @Memoize({ timeout: 60 })
  async find(id: number) {
    await new Promise((resolve) => setTimeout(resolve, 300)) // a slow query
    return { id, name: names.get(id) ?? `user ${id}`, loadedAt: new Date().toISOString() }
  }

  async rename(id: number, name: string) {
    names.set(id, name)
    await this.cache.deleteMemoized(this.find.bind(this), id)
    await this.cache.deleteCached(UsersController.prototype.show, { path: `/users/${id}` })
  }
}

@Controller('users')
class UsersController {
  constructor(@Inject(UsersService) private readonly users: UsersService) {}

  @Get(':id')
  @Cached({ timeout: 60, responseHitIndication: 'x-cache' })
  async show(@Param('id') id: string) {
    return { ...(await this.users.find(Number(id))), renderedAt: new Date().toISOString() }
  }

  @Post(':id/rename')
  async rename(@Param('id') id: string, @Query('name') name: string) {
    await this.users.rename(Number(id), name)
    return { renamed: Number(id), name }
  }
}

@Module({
  imports: [CachetteModule.forRoot({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 300 })],
  controllers: [UsersController],
  providers: [UsersService],
})
class AppModule {}

const app =
  process.env.PLATFORM === 'fastify'
    ? await NestFactory.create(AppModule, new FastifyAdapter())
    : await NestFactory.create(AppModule)
app.enableShutdownHooks()
await app.listen(Number(process.env.PORT ?? 3000))
console.log(`listening on ${await app.getUrl()}`)
