// build.ts asks apt which library packages exist; the choice among their names is tested here on the
// names Debian 12, Debian 13 and Ubuntu carry, since only one of them runs on this machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEBIAN_BUILDS,
  debianBuild,
  glibcAtLeast,
  installHint,
  pickLibraryPackages,
  PREBUILT_PACKAGES,
  prebuiltPackageFor,
  SYSTEM_RECIPES,
  systemKind,
} from "../ffi/platform.ts";

const all = () => true;

test("Debian 12's library packages are libsvtav1enc1 and librav1e0", () => {
  const known = ["libsvtav1enc1", "libsvtav1enc-dev", "librav1e0", "librav1e-dev"];
  assert.deepEqual(pickLibraryPackages(known, all), ["libsvtav1enc1", "librav1e0"]);
});

test("Debian 13's library packages are libsvtav1enc2 and librav1e0.7", () => {
  const known = ["libsvtav1enc2", "libsvtav1enc-dev", "libsvtav1dec0", "librav1e0.7", "librav1e-dev"];
  assert.deepEqual(pickLibraryPackages(known, all), ["libsvtav1enc2", "librav1e0.7"]);
});

test("the newest installable soname wins; names without a candidate are passed over", () => {
  const known = [
    "libsvtav1enc1d1",
    "libsvtav1enc3",
    "libsvtav1enc2",
    "librav1e0",
    "librav1e0.8",
    "librav1e0.7",
  ];
  assert.deepEqual(pickLibraryPackages(known, all), ["libsvtav1enc3", "librav1e0.8"]);
  const noNewest = (pkg: string) => pkg !== "libsvtav1enc3" && pkg !== "librav1e0.8";
  assert.deepEqual(pickLibraryPackages(known, noNewest), ["libsvtav1enc2", "librav1e0.7"]);
});

test("Ubuntu's libsvtav1enc1d1 is recognised; with no known name the Debian 12 names are the fallback", () => {
  assert.deepEqual(pickLibraryPackages(["libsvtav1enc1d1", "librav1e0"], all), [
    "libsvtav1enc1d1",
    "librav1e0",
  ]);
  assert.deepEqual(pickLibraryPackages([], all), ["libsvtav1enc1", "librav1e0"]);
});

test("build.ts --svt-av1 and --rav1e name pinned Debian builds; an unknown choice names the ones there are", () => {
  assert.equal(debianBuild("svt-av1", "2").version, "2.3.0");
  assert.equal(debianBuild("svt-av1", "3").version, "3.1.2");
  assert.equal(debianBuild("rav1e", "0.7").version, "0.7.1");
  assert.equal(debianBuild("rav1e", "0.8").version, "0.8.1");
  assert.throws(
    () => debianBuild("svt-av1", "4"),
    /--svt-av1 4: no such build; choose one of 2 \(2\.3\.0\), 3 \(3\.1\.2\)/,
  );
  for (const b of DEBIAN_BUILDS) {
    assert.ok(b.packages.some((p) => p.kind === "library"), `${b.library} ${b.version} has its library`);
    for (const p of b.packages) assert.match(p.sha256, /^[0-9a-f]{64}$/, `${p.name} is pinned by SHA-256`);
  }
});

test("glibc versions compare by number", () => {
  assert.equal(glibcAtLeast("2.36", "2.34"), true);
  assert.equal(glibcAtLeast("2.34", "2.34"), true);
  assert.equal(glibcAtLeast("2.31", "2.34"), false);
  assert.equal(glibcAtLeast("2.4", "2.34"), false);
  assert.equal(glibcAtLeast("3.0", "2.43"), true);
});

const osRelease = (id: string, like = "") => `NAME="x"\nID=${id}\n${like ? `ID_LIKE="${like}"\n` : ""}`;

test("the system family comes from os-release's ID, then ID_LIKE, and macOS from the platform", () => {
  assert.equal(systemKind("linux", osRelease("debian")), "debian");
  assert.equal(systemKind("linux", osRelease("ubuntu", "debian")), "debian");
  assert.equal(systemKind("linux", osRelease("linuxmint", "ubuntu debian")), "debian");
  assert.equal(systemKind("linux", osRelease("fedora")), "fedora");
  assert.equal(systemKind("linux", osRelease('"rocky"', "rhel centos fedora")), "fedora");
  assert.equal(systemKind("linux", osRelease("alpine")), "alpine");
  assert.equal(systemKind("linux", osRelease("manjaro", "arch")), "arch");
  assert.equal(systemKind("linux", osRelease("nixos")), "other");
  assert.equal(systemKind("linux", undefined), "other");
  assert.equal(systemKind("darwin", undefined), "macos");
});

test("each family's install command, library folders and file names", () => {
  const hint = (lib: "svt-av1" | "rav1e", kind: Parameters<typeof installHint>[1]) => installHint(lib, kind);
  assert.match(hint("svt-av1", "debian"), /sudo apt-get install libsvtav1enc1 .*libsvtav1enc2 on Debian 13/);
  assert.match(hint("svt-av1", "debian"), /build\.ts --svt-av1 3/);
  assert.match(hint("svt-av1", "debian"), /Ubuntu 22\.04 ships SVT-AV1 0\.9, older than supported/);
  assert.match(hint("rav1e", "debian"), /build\.ts --rav1e 0\.8/);
  assert.match(hint("svt-av1", "fedora"), /^On Fedora\/RHEL: sudo dnf install svt-av1-libs/);
  assert.match(hint("rav1e", "fedora"), /sudo dnf install rav1e-libs/);
  assert.doesNotMatch(
    hint("rav1e", "fedora"),
    /build\.ts/,
    "build.ts fetches with apt, which Fedora has not",
  );
  assert.match(hint("svt-av1", "alpine"), /apk add svt-av1-libs/);
  assert.doesNotMatch(
    hint("svt-av1", "alpine"),
    /npm install @av1-stream\/linux-x64-gnu/,
    "a glibc build on musl",
  );
  assert.match(hint("rav1e", "arch"), /sudo pacman -S rav1e/);
  assert.match(hint("svt-av1", "macos"), /^On macOS \(Homebrew\): brew install svt-av1/);
  for (const kind of Object.keys(SYSTEM_RECIPES) as (keyof typeof SYSTEM_RECIPES)[]) {
    assert.match(hint("svt-av1", kind), /SVTAV1_LIB_PATH/);
    assert.match(hint("rav1e", kind), /RAV1E_LIB_PATH/);
  }
  assert.deepEqual(SYSTEM_RECIPES.fedora.libraryDirs[0], "/usr/lib64");
  assert.deepEqual(SYSTEM_RECIPES.macos.libraryDirs, ["/opt/homebrew/lib", "/usr/local/lib"]);
  assert.equal(SYSTEM_RECIPES.macos.files["svt-av1"][1], "libSvtAv1Enc.3.dylib");
  assert.ok(SYSTEM_RECIPES.macos.files.rav1e.includes("librav1e.0.8.dylib"));
  assert.ok(
    SYSTEM_RECIPES.debian.files["svt-av1"].includes("libSvtAv1Enc.so.0"),
    "0.9 is found, to be refused",
  );
  assert.deepEqual(SYSTEM_RECIPES.alpine.files.rav1e.slice(0, 3), [
    "librav1e.so.0.8",
    "librav1e.so.0.7",
    "librav1e.so.0",
  ]);
});

test("the platform package for each platform: linux-x64-gnu is built, the others are planned", () => {
  assert.equal(prebuiltPackageFor("linux", "x64", "glibc")?.name, "@av1-stream/linux-x64-gnu");
  assert.equal(prebuiltPackageFor("linux", "x64", "glibc")?.built, true);
  assert.equal(prebuiltPackageFor("linux", "x64", "musl")?.name, "@av1-stream/linux-x64-musl");
  assert.equal(prebuiltPackageFor("linux", "arm64")?.name, "@av1-stream/linux-arm64-gnu");
  assert.equal(prebuiltPackageFor("darwin", "arm64")?.name, "@av1-stream/darwin-arm64");
  assert.equal(prebuiltPackageFor("win32", "x64"), undefined);
  assert.deepEqual(PREBUILT_PACKAGES.filter((p) => p.built).map((p) => p.name), [
    "@av1-stream/linux-x64-gnu",
  ]);
});
