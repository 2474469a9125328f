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

/** One Debian binary package of a newer library build, pinned by version and SHA-256. */
export interface DebianBuildPackage {
  /** Package name. */
  name: string;
  /** Exact Debian version. */
  version: string;
  /** Suite that serves it. */
  suite: "trixie" | "sid";
  /** SHA-256 of the amd64 `.deb`, checked before it is unpacked. */
  sha256: string;
  /** What it holds: the shared library, or the library's own command-line tool. */
  kind: "library" | "tool";
}

/** A newer SVT-AV1 or rav1e build that `build.ts --svt-av1 N` / `--rav1e N` fetches from Debian. */
export interface DebianBuild {
  /** The library. */
  library: "svt-av1" | "rav1e";
  /** The value given on the command line (`2`, `3`, `0.7`, `0.8`). */
  select: string;
  /** The library's version. */
  version: string;
  /** The glibc the build needs at least. */
  glibc: string;
  /** The packages; a `tool` package is absent where its build needs a newer glibc than Debian 12's. */
  packages: DebianBuildPackage[];
}

/** The pinned builds (amd64). Their libraries load on Debian 12 and on any system with glibc ≥ 2.34. */
export const DEBIAN_BUILDS: DebianBuild[] = [
  {
    library: "svt-av1",
    select: "2",
    version: "2.3.0",
    glibc: "2.34",
    packages: [
      {
        name: "libsvtav1enc2",
        version: "2.3.0+dfsg-1",
        suite: "trixie",
        kind: "library",
        sha256: "cdaf961c3cc4fe78a19ff18c17d83d813f78a378fdcc4c86ccbb9b54e84ae599",
      },
      {
        name: "svt-av1",
        version: "2.3.0+dfsg-1",
        suite: "trixie",
        kind: "tool",
        sha256: "518e6701d501de83bb99483874b55bcf9e348441483787cf79684eedb05ddf9a",
      },
    ],
  },
  {
    library: "svt-av1",
    select: "3",
    version: "3.1.2",
    glibc: "2.34",
    // sid's svt-av1 tool is 4.x and needs glibc 2.43: the 3.1.2 library comes without its app.
    packages: [{
      name: "libsvtav1enc3",
      version: "3.1.2+dfsg-2",
      suite: "sid",
      kind: "library",
      sha256: "86272a522435a9de3381bbc67a0d08744716f6451f321b270fba12074ef1972a",
    }],
  },
  {
    library: "rav1e",
    select: "0.7",
    version: "0.7.1",
    glibc: "2.34",
    packages: [
      {
        name: "librav1e0.7",
        version: "0.7.1-9+b2",
        suite: "trixie",
        kind: "library",
        sha256: "d5b1373a8d6905ee4523faf1db7a626dc660e03836ec91b616e57ba386f47eb6",
      },
      {
        name: "rav1e",
        version: "0.7.1-9+b2",
        suite: "trixie",
        kind: "tool",
        sha256: "8b35b053dea62fe1e288dbd451bf51d1ffdda3e8fad480cee48362f7de929c18",
      },
    ],
  },
  {
    library: "rav1e",
    select: "0.8",
    version: "0.8.1",
    glibc: "2.34",
    // sid's rav1e 0.8.1 tool needs glibc 2.43.
    packages: [{
      name: "librav1e0.8",
      version: "0.8.1-12",
      suite: "sid",
      kind: "library",
      sha256: "5f806010d7380781b0bdc2d6156d093f5e1c0d5aace398b84ee78cb47d70cc05",
    }],
  },
];

/** The pinned build for `--svt-av1 <select>` or `--rav1e <select>`, or an error naming the choices. */
export function debianBuild(library: "svt-av1" | "rav1e", select: string): DebianBuild {
  const found = DEBIAN_BUILDS.find((b) => b.library === library && b.select === select);
  if (found) return found;
  const choices = DEBIAN_BUILDS.filter((b) => b.library === library).map((b) => `${b.select} (${b.version})`);
  throw new Error(`--${library} ${select}: no such build; choose one of ${choices.join(", ")}`);
}

/** Whether a glibc version (`"2.36"`) is at least another. */
export function glibcAtLeast(have: string, need: string): boolean {
  const [a, b] = [have, need].map((v) => v.split(".").map(Number));
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
