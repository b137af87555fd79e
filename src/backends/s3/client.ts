/**
 * Internal: loading `@aws-sdk/client-s3` when an S3 backend is constructed,
 * and the small structural types cachette needs from it, so the public option
 * types do not require the SDK's own.
 */
import { loadOptional } from '../../core/optional.js'

/** What cachette calls on an S3 client: `send` (with an abort signal) and `destroy`. */
export interface S3ClientLike {
  /** Sends one command (`GetObjectCommand`, ...), aborted by `abortSignal`. */
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>
  /** Closes the client's connections. */
  destroy(): void
}

type Command = new (input: Record<string, unknown>) => unknown

/** The parts of `@aws-sdk/client-s3` cachette uses. */
export interface S3Module {
  S3Client: new (config: Record<string, unknown>) => S3ClientLike
  GetObjectCommand: Command
  PutObjectCommand: Command
  HeadObjectCommand: Command
  DeleteObjectCommand: Command
  DeleteObjectsCommand: Command
  ListObjectsV2Command: Command
  GetBucketLifecycleConfigurationCommand: Command
  PutBucketLifecycleConfigurationCommand: Command
}

/** The SDK, loaded on first use. @throws {MissingDependencyError} naming the package. */
export function loadS3(forWhat: string): S3Module {
  return loadOptional<S3Module>('@aws-sdk/client-s3', forWhat)
}

/** An S3 error's HTTP status, if it has one. */
export function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode
}

/** Whether an S3 error means the object does not exist. */
export function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name
  return statusOf(error) === 404 || name === 'NoSuchKey' || name === 'NotFound'
}

/** Whether an S3 error is a failed precondition (`If-None-Match`/`If-Match`) or a conflicting conditional write. */
export function isPreconditionFailed(error: unknown): boolean {
  const status = statusOf(error)
  return status === 412 || status === 409
}
