/**
 * `load` run on the first call only, every later call sharing its result; a failed load is
 * forgotten, so that the next call tries again (a module that failed to load once, a file the
 * user has since fixed, must not stay broken for the process's life).
 */
export function loadOnce<T> (load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined
  return async () => {
    loading ??= load().catch((error: unknown) => {
      loading = undefined
      throw error
    })
    return await loading
  }
}
