/**
 * The two path operations the loader needs, for POSIX paths (it runs on Linux and macOS), without
 * `node:path`, which Deno loads from its Node compatibility layer.
 * @module
 */

/** The parts joined by `/`, empty parts left out and repeated slashes made one (no `.`/`..` folding). */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/").replace(/\/{2,}/g, "/");
}

/** The folder `path` is in: `/` for a file at the root or `/` itself, `.` for a bare name. */
export function parentPath(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const i = trimmed.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : trimmed.slice(0, i);
}
