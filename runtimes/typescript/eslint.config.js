// Lint rules: typescript-eslint's recommended type-aware set, plus no console in the library
// (it logs through the Logger the user passes, never to stdout or stderr by itself).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "build/**", "eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { project: "./tsconfig.test.json", tsconfigRootDir: import.meta.dirname } },
    rules: {
      "no-console": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      // A handler may throw anything; the runtime passes on exactly what was thrown.
      "@typescript-eslint/prefer-promise-reject-errors": "off",
    },
  },
  // node:test's test() returns a promise the runner tracks itself.
  { files: ["test/**"], rules: { "@typescript-eslint/no-floating-promises": "off" } },
);
