// build.ts asks apt which library packages exist; the choice among their names is tested here on the
// names Debian 12, Debian 13 and Ubuntu carry, since only one of them runs on this machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEBIAN_BUILDS, debianBuild, glibcAtLeast, pickLibraryPackages } from "../ffi/platform.ts";

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
