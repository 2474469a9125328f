/**
 * Package names of the native libraries on the systems av1-stream installs on, and the choice among
 * the names a package manager knows. Used by `build.ts`; pure functions, unit-tested.
 * @module
 */

/**
 * The Debian/Ubuntu packages that provide the two libraries. Their names carry the soname, so they
 * differ between releases (Debian 12: `libsvtav1enc1`, `librav1e0`; Debian 13: `libsvtav1enc2`,
 * `librav1e0.7`; Ubuntu: `libsvtav1enc1d1`…): the package manager is asked which one it has, and these
 * names are only the fallback when it cannot tell.
 */
export const LIBRARY_PACKAGE_PATTERNS: { name: string; pattern: RegExp; fallback: string }[] = [
  { name: "SVT-AV1", pattern: /^libsvtav1enc(\d+)(d\d+)?$/, fallback: "libsvtav1enc1" },
  { name: "rav1e", pattern: /^librav1e(\d+(?:\.\d+)?)$/, fallback: "librav1e0" },
];

/**
 * Picks, among the package names apt knows, the newest installable one for each library: the highest
 * soname number with a candidate version.
 */
export function pickLibraryPackages(known: string[], installable: (pkg: string) => boolean): string[] {
  return LIBRARY_PACKAGE_PATTERNS.map(({ pattern, fallback }) => {
    const matching = known
      .map((pkg) => ({ pkg, m: pattern.exec(pkg) }))
      .filter((x): x is { pkg: string; m: RegExpExecArray } => x.m !== null)
      .sort((a, b) => Number(b.m[1]) - Number(a.m[1]) || b.pkg.localeCompare(a.pkg));
    return matching.find((x) => installable(x.pkg))?.pkg ?? fallback;
  });
}
