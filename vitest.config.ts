import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Network tests start servers; a 2-core CI box is happier with bounded parallelism.
    maxWorkers: 2,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
