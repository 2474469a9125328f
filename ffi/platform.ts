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

/** The families of systems whose package managers, library names and folders the loader knows. */
export type SystemKind = "debian" | "fedora" | "alpine" | "arch" | "macos" | "other";

/** Which library a name, file or hint is about. */
export type NativeLibraryName = "svt-av1" | "rav1e";

/**
 * The system family from the platform (`os.platform()`) and the text of `/etc/os-release`: its `ID`,
 * then each `ID_LIKE` entry (Ubuntu and Mint are `debian`-like, Rocky and RHEL `fedora`-like, Manjaro
 * `arch`-like).
 */
export function systemKind(platform: string, osRelease?: string): SystemKind {
  if (platform === "darwin") return "macos";
  if (platform !== "linux" || !osRelease) return "other";
  const field = (name: string) => {
    const m = new RegExp(`^${name}=(.*)$`, "m").exec(osRelease);
    return (m?.[1] ?? "").trim().replace(/^["']|["']$/g, "").toLowerCase();
  };
  const ids = [field("ID"), ...field("ID_LIKE").split(/\s+/)].filter(Boolean);
  const known: Record<string, SystemKind> = {
    debian: "debian",
    ubuntu: "debian",
    fedora: "fedora",
    rhel: "fedora",
    centos: "fedora",
    alpine: "alpine",
    arch: "arch",
    archlinux: "arch",
  };
  for (const id of ids) if (known[id]) return known[id];
  return "other";
}

/** How one family of systems names, places and installs the two libraries. */
export interface SystemRecipe {
  /** The family. */
  kind: SystemKind;
  /** Its name in messages. */
  label: string;
  /** The command that installs the library (the shared library alone, not its headers or tools). */
  install: Record<NativeLibraryName, string>;
  /** File names the library has there, newest first (sonames on Linux, install names on macOS). */
  files: Record<NativeLibraryName, string[]>;
  /** The folders its package manager puts libraries in, searched before the dynamic linker's own path. */
  libraryDirs: string[];
  /** What else a user of that system should know (too old a library, no prebuilt package…). */
  note?: string;
}

const LINUX_FILES: Record<NativeLibraryName, string[]> = {
  // .so.0 is SVT-AV1 0.8-0.9 (Ubuntu 22.04): found so that it is refused by version with a clear message.
  "svt-av1": [
    "libSvtAv1Enc.so.4",
    "libSvtAv1Enc.so.3",
    "libSvtAv1Enc.so.2",
    "libSvtAv1Enc.so.1",
    "libSvtAv1Enc.so.0",
    "libSvtAv1Enc.so",
  ],
  // Upstream's soname is .so.0; Debian 13 and later name theirs after the minor version.
  rav1e: ["librav1e.so.0.8", "librav1e.so.0.7", "librav1e.so.0", "librav1e.so"],
};

/**
 * The install tables, one per family. Only Debian runs on the machines this project is tested on; the
 * others are taken from their package archives (Fedora's `svt-av1-libs`/`rav1e-libs`, Alpine's `-libs`
 * subpackages, Arch's `svt-av1`/`rav1e`, Homebrew's formulae) and unit-tested as tables.
 */
export const SYSTEM_RECIPES: Record<SystemKind, SystemRecipe> = {
  debian: {
    kind: "debian",
    label: "Debian/Ubuntu",
    install: {
      "svt-av1":
        "sudo apt-get install libsvtav1enc1 (Debian 12; libsvtav1enc2 on Debian 13, libsvtav1enc1d1 on Ubuntu 24.04; `deno run -A build.ts` asks apt for the name)",
      rav1e: "sudo apt-get install librav1e0 (Debian 12 and Ubuntu; librav1e0.7 on Debian 13)",
    },
    files: LINUX_FILES,
    libraryDirs: ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/lib"],
    note: "Ubuntu 22.04 ships SVT-AV1 0.9, older than supported: take one of the ways without root there",
  },
  fedora: {
    kind: "fedora",
    label: "Fedora/RHEL",
    install: {
      "svt-av1": "sudo dnf install svt-av1-libs",
      rav1e: "sudo dnf install rav1e-libs",
    },
    files: LINUX_FILES,
    libraryDirs: ["/usr/lib64", "/usr/local/lib64", "/usr/local/lib"],
    note: "RHEL and its rebuilds carry both in EPEL (`sudo dnf install epel-release` first)",
  },
  alpine: {
    kind: "alpine",
    label: "Alpine",
    install: {
      "svt-av1": "apk add svt-av1-libs",
      rav1e: "apk add rav1e-libs",
    },
    files: LINUX_FILES,
    libraryDirs: ["/usr/lib", "/usr/local/lib"],
    note: "Alpine is musl: the prebuilt @av1-stream/linux-x64-gnu package does not load there",
  },
  arch: {
    kind: "arch",
    label: "Arch",
    install: {
      "svt-av1": "sudo pacman -S svt-av1",
      rav1e: "sudo pacman -S rav1e",
    },
    files: LINUX_FILES,
    libraryDirs: ["/usr/lib", "/usr/local/lib"],
  },
  macos: {
    kind: "macos",
    label: "macOS (Homebrew)",
    install: {
      "svt-av1": "brew install svt-av1",
      rav1e: "brew install rav1e",
    },
    files: {
      "svt-av1": [
        "libSvtAv1Enc.4.dylib",
        "libSvtAv1Enc.3.dylib",
        "libSvtAv1Enc.2.dylib",
        "libSvtAv1Enc.1.dylib",
        "libSvtAv1Enc.0.dylib",
        "libSvtAv1Enc.dylib",
      ],
      rav1e: ["librav1e.0.8.dylib", "librav1e.0.7.dylib", "librav1e.0.dylib", "librav1e.dylib"],
    },
    // Apple silicon's Homebrew prefix, then Intel's.
    libraryDirs: ["/opt/homebrew/lib", "/usr/local/lib"],
  },
  other: {
    kind: "other",
    label: "this system",
    install: {
      "svt-av1": "install SVT-AV1 1.4 or later from your package manager (its shared library, libSvtAv1Enc)",
      rav1e: "install rav1e 0.5 or later from your package manager (its C library, librav1e)",
    },
    files: LINUX_FILES,
    libraryDirs: ["/usr/local/lib", "/usr/lib64", "/usr/lib"],
  },
};

/** The environment variable that names a library's file exactly. */
export const LIBRARY_PATH_VARIABLES: Record<NativeLibraryName, string> = {
  "svt-av1": "SVTAV1_LIB_PATH",
  rav1e: "RAV1E_LIB_PATH",
};

/**
 * How to get a library onto a system of this family: its package manager's command, then the ways that
 * need no root (the prebuilt npm package on x64 glibc Linux, `build.ts --svt-av1`/`--rav1e` on glibc
 * Linux with apt), then the environment variable.
 */
export function installHint(library: NativeLibraryName, kind: SystemKind): string {
  const recipe = SYSTEM_RECIPES[kind];
  const parts = [`On ${recipe.label}: ${recipe.install[library]}`];
  if (kind !== "alpine" && kind !== "macos") {
    parts.push(
      `without root on x86-64 glibc Linux: \`npm install ${
        PREBUILT_PACKAGES[0].name
      }\` (SVT-AV1 3.1.2 and rav1e 0.8.1)`,
    );
  }
  if (kind === "debian") {
    parts.push(
      `or \`deno run -A build.ts --${library} ${
        library === "svt-av1" ? "3" : "0.8"
      }\` (Debian's build into build/)`,
    );
  }
  if (recipe.note) parts.push(recipe.note);
  parts.push(`or set ${LIBRARY_PATH_VARIABLES[library]} to the library's path`);
  return parts.join("; ");
}

/** A per-platform npm package of prebuilt libraries, the way sharp and node-av ship theirs. */
export interface PrebuiltPackage {
  /** The npm name. */
  name: string;
  /** `os.platform()`, `os.arch()` and the C library it is for (npm's `os`, `cpu` and `libc` fields). */
  platform: "linux" | "darwin";
  arch: "x64" | "arm64";
  libc?: "glibc" | "musl";
  /** Whether scripts/platform_package.ts makes it today, or it is a plan with its source named. */
  built: boolean;
  /** Where its libraries come from. */
  source: string;
}

/**
 * The platform packages. Only linux-x64-gnu is made here (from Debian's amd64 packages, the same pinned
 * builds as `build.ts --svt-av1 3 --rav1e 0.8`); the others are the plan for when a machine of that kind
 * can build them.
 */
export const PREBUILT_PACKAGES: PrebuiltPackage[] = [
  {
    name: "@av1-stream/linux-x64-gnu",
    platform: "linux",
    arch: "x64",
    libc: "glibc",
    built: true,
    source: "Debian sid's libsvtav1enc3 3.1.2 and librav1e0.8 0.8.1 (amd64), needs glibc 2.34",
  },
  {
    name: "@av1-stream/linux-arm64-gnu",
    platform: "linux",
    arch: "arm64",
    libc: "glibc",
    built: false,
    source: "Debian's arm64 builds of the same two packages (same names and versions, arm64 .debs)",
  },
  {
    name: "@av1-stream/linux-x64-musl",
    platform: "linux",
    arch: "x64",
    libc: "musl",
    built: false,
    source: "Alpine's svt-av1-libs and rav1e-libs (x86_64 .apk), or a static musl build of each",
  },
  {
    name: "@av1-stream/linux-arm64-musl",
    platform: "linux",
    arch: "arm64",
    libc: "musl",
    built: false,
    source: "Alpine's svt-av1-libs and rav1e-libs (aarch64 .apk)",
  },
  {
    name: "@av1-stream/darwin-arm64",
    platform: "darwin",
    arch: "arm64",
    built: false,
    source:
      "SVT-AV1 and rav1e (cargo-c) built from their release tags on an arm64 macOS runner, install names @rpath-relative",
  },
  {
    name: "@av1-stream/darwin-x64",
    platform: "darwin",
    arch: "x64",
    built: false,
    source: "the same, on an x86-64 macOS runner",
  },
];

/** The platform package for a platform, architecture and C library, if there is one in the plan. */
export function prebuiltPackageFor(
  platform: string,
  arch: string,
  libc?: "glibc" | "musl",
): PrebuiltPackage | undefined {
  return PREBUILT_PACKAGES.find((p) =>
    p.platform === platform && p.arch === arch && (p.platform !== "linux" || p.libc === (libc ?? "glibc"))
  );
}
