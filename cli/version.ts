/**
 * `av1-stream --version`: the package's version and, for each library, which file the loader takes and
 * its version (or why none loads), so that a run can be tied to the library that made it.
 * @module
 */
import { locateRav1e, locateSvtAv1 } from "../ffi/load.ts";
import { EncoderError } from "../lib/errors.ts";
import { VERSION } from "../lib/version.ts";

/** One library the CLI can encode with, as the loader finds it. */
export interface LibraryInUse {
  /** `SVT-AV1` or `rav1e`. */
  name: string;
  /** Its version text, as the library reports it. */
  version: string;
  /** The file opened. */
  path: string;
}

/** Where the loader finds a codec's library and its version. */
export async function libraryInUse(codec: "svt-av1" | "rav1e"): Promise<LibraryInUse> {
  const found = codec === "svt-av1" ? await locateSvtAv1() : await locateRav1e();
  return { name: codec === "svt-av1" ? "SVT-AV1" : "rav1e", version: found.version.text, path: found.path };
}

/** The text of `--version`: this package, then each library or the reason it does not load. */
export async function versionText(): Promise<string> {
  const lines = [`av1-stream ${VERSION}`];
  for (const codec of ["svt-av1", "rav1e"] as const) {
    try {
      const lib = await libraryInUse(codec);
      lines.push(`${lib.name} ${lib.version} (${lib.path})`);
    } catch (e) {
      const code = e instanceof EncoderError ? `${e.code}: ` : "";
      lines.push(
        `${codec === "svt-av1" ? "SVT-AV1" : "rav1e"}: ${code}${(e as Error).message.split("\n")[0]}`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
