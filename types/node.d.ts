// Node 20's ImportMeta has no `main` (Deno's and Bun's have): entry points fall back to comparing paths.
interface ImportMeta {
  main?: boolean;
}
