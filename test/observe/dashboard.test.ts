/**
 * The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by playwright-core)
 * opens `/` on one region's monitor of a running 3-region mesh. The page draws every region and link,
 * shows traffic as a message rate, turns a cut link's edge to down without a reload, loads nothing from
 * anywhere but the monitor, and leaves a screenshot in test-artifacts/dashboard.png.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { collect, type Kit, sc, startKit } from "./kit.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dirname, "../../test-artifacts");

let kit: Kit | undefined;
let browser: Browser | undefined;
let publisher: NodeJS.Timeout | undefined;

afterEach(async () => {
  clearInterval(publisher);
  publisher = undefined;
  await browser?.close();
  browser = undefined;
  await kit?.close();
  kit = undefined;
});

/**
 * The little of the DOM the page conditions below use. They run in the browser (Playwright sends their
 * source), and this project compiles without the DOM types; passing functions rather than strings keeps
 * them working under the page's CSP, which forbids eval.
 */
interface PageElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};

const MESH =
  "  - between: [a, b]\n    token: t\n  - between: [b, c]\n    token: t\n  - between: [c, a]\n    token: t\n";

describe("dashboard in headless Chromium", () => {
  it("renders the 3 regions, shows traffic, and a cut link turns its edge down within seconds", async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
    kit = await startKit(["a", "b", "c"], MESH);
    await kit.converged();
    const base = kit.system.monitorUrl("a")!;
    const origin = new URL(base).origin;

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    const requests: string[] = [];
    const problems: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    const until = (cond: () => boolean, timeout = 10_000) =>
      page.waitForFunction(cond, undefined, { timeout });
    await page.goto(`${base}/?interval=250`);

    // Every region and every link, all up, each edge labelled with its RTT.
    await until(
      () =>
        document.querySelectorAll("#graph .node").length === 3 &&
        document.querySelectorAll('#graph .edge[data-status="up"]').length === 3,
    );
    const nodes = await page.$$eval("#graph .node", (els) => els.map((e) => e.getAttribute("data-region")));
    expect(nodes.sort()).toEqual(["a", "b", "c"]);
    await until(() =>
      Array.from(document.querySelectorAll("#graph .edge-label")).every((l) =>
        / ms/.test(l.textContent ?? ""),
      ),
    );
    expect(await page.textContent("#regions-body")).toContain("ready");

    // Traffic a -> b shows as a non-zero rate on that edge (publishing until the page has seen it).
    const nb = await kit.client("b");
    collect(nb, "dash.x");
    await nb.flush();
    await kit.converged();
    const na = await kit.client("a");
    publisher = setInterval(() => {
      for (let i = 0; i < 20; i++) na.publish("dash.x", sc.encode("tick"));
    }, 25);
    await until(() => {
      const label = document.querySelector('#graph .edge[data-a="a"][data-b="b"] .edge-label');
      const m = /([\d.]+) msg\/s/.exec(label?.textContent ?? "");
      return m !== null && Number(m[1]) > 0;
    });
    clearInterval(publisher);

    // The explain form asks /explainz and lists a verdict per region.
    await page.fill("#explain-subject", "dash.x");
    await page.selectOption("#explain-from", "a");
    await page.click('#explain button[type="submit"]');
    await page.waitForSelector("#explain-out li:nth-child(3)", { timeout: 5000 });
    const verdicts = await page.$$eval("#explain-out li", (els) => els.map((e) => e.textContent ?? ""));
    expect(verdicts.find((t) => t.startsWith("b: "))).toMatch(/^b: delivered — subscribers \(path a → b\)$/);
    expect(verdicts.find((t) => t.startsWith("c: "))).toMatch(/^c: no interest/);

    // Cut b - c at both ends: the page (no reload) shows the edge down, and both ends not ready.
    const cutAt = Date.now();
    await kit.gw("b").dropLink("c");
    await kit.gw("c").dropLink("b");
    await page.waitForSelector('#graph .edge[data-a="b"][data-b="c"][data-status="down"]', { timeout: 5000 });
    const tookMs = Date.now() - cutAt;
    expect(tookMs).toBeLessThan(5000);
    await until(
      () =>
        document.querySelector('#graph .node[data-region="b"]')?.getAttribute("data-status") ===
          "not-ready" &&
        document.querySelector('#graph .node[data-region="c"]')?.getAttribute("data-status") === "not-ready",
      5000,
    );
    // The other two links stay up: c is still reached through a.
    expect(await page.$$eval('#graph .edge[data-status="up"]', (els) => els.length)).toBe(2);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);

    // Self-contained: nothing but the monitor was asked for anything, and the script ran cleanly.
    expect(requests.length).toBeGreaterThan(3);
    expect(requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    expect(problems).toEqual([]);
  });
});
