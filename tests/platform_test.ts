// build.ts asks apt which library packages exist; the choice among their names is tested here on the
// names Debian 12, Debian 13 and Ubuntu carry, since only one of them runs on this machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pickLibraryPackages } from "../ffi/platform.ts";

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
