/**
 * End to end through the CLI: `vfstrace stats` and `vfstrace report` on the
 * golden capture of a real Linux 6.1 guest session
 * (tests/fixtures/guest_session.pcapng, workload tests/fixtures/session.sh),
 * and the report rendered by a real headless Chromium: the page's own
 * script must draw every chart (it says how many in `data-charts`), and
 * the screenshot must show them (the series' colours, in the charts' boxes).
 *
 * Chromium: Debian's `chromium` package (`chromium` on PATH, or
 * VFSTRACE_CHROMIUM=/path). Missing, the Chromium tests fail, unless
 * VFSTRACE_SKIP_CHROMIUM=1 says to skip them.
 */
import assert from "node:assert/strict";
import { CaptureReader } from "../../capture/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const VFSTRACE = `${ROOT}vfstrace`;
const FIXTURE = `${ROOT}tests/fixtures/guest_session.pcapng`;
const SVG_NS = "http://www.w3.org/2000/svg";
/** session.sh writes f1…f5 (`file N\n`, 7 bytes each) and a 1 MiB file. */
const WRITTEN = 1048576 + 5 * 7;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function vfstrace(args: string[], stdin?: string): Promise<Run> {
  const child = new Deno.Command(VFSTRACE, {
    args,
    env: { NO_COLOR: "1" },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const file = await Deno.open(stdin);
    await file.readable.pipeTo(child.stdin);
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function rowOf(table: string, name: string): string[] {
  const line = table.split("\n").find((l) => l.startsWith(name + " "));
  assert.ok(line !== undefined, `no ${name} row in:\n${table}`);
  return line.trim().split(/\s+/);
}

Deno.test("stats: the table of the real session", async () => {
  const r = await vfstrace(["stats", FIXTURE]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const t = r.stdout;
  assert.match(t, /^capture +\S+guest_session\.pcapng$/m);
  assert.match(
    t,
    new RegExp(`^bytes +read 1048576 \\(1 MiB\\), written ${WRITTEN} \\(1 MiB\\)$`, "m"),
  );
  assert.match(t, /^operations +\d+: \d+ ok, \d+ errors, 0 unanswered, 0 undecodable$/m);
  assert.match(
    t,
    /^latency +min \S+ +p50 \S+ +p90 \S+ +p99 \S+ +max \S+ +mean \S+ +\(quantiles ±0\.78%\)$/m,
  );
  assert.match(t, /^residence +(n\/a|requests p50 )/m);
  assert.equal(rowOf(t, "CREATE")[1], "6", "f1…f5 and big");
  assert.equal(rowOf(t, "INIT")[1], "1");
  assert.notEqual(rowOf(t, "LOOKUP")[2], "-", "LOOKUPs of missing names fail");
  assert.match(t, /^ {2}LOOKUP +ENOENT +\d+$/m);
  assert.match(t, /^ {2}RMDIR +ENOTEMPTY +1$/m);
  assert.match(t, /^ {2}hiprio +\d+ +0 +0 /m);
  assert.match(t, /^ {2}q1 +\d+ +\d+ +0 /m);
  assert.match(t, /^total +\d+ +\d+ +100\.00 /m);
});

Deno.test("stats --json: one document; from stdin the same numbers", async () => {
  const r = await vfstrace(["stats", FIXTURE, "--json", "--sort", "count"]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.totals.bytes_written, WRITTEN);
  assert.equal(doc.totals.bytes_read, 1048576);
  assert.equal(doc.totals.unanswered, 0);
  const byOp = new Map(doc.operations.map((o: { op: string }) => [o.op, o]));
  assert.equal((byOp.get("CREATE") as { count: number }).count, 6);
  const lookup = byOp.get("LOOKUP") as { errnos: Record<string, number>; errors: number };
  assert.ok(lookup.errnos.ENOENT! >= 1);
  assert.equal(lookup.errors, lookup.errnos.ENOENT);
  assert.deepEqual((byOp.get("RMDIR") as { errnos: unknown }).errnos, { ENOTEMPTY: 1 });
  const counts = doc.operations.map((o: { count: number }) => o.count);
  assert.deepEqual(counts, [...counts].sort((a: number, b: number) => b - a));
  // Residence: feature-detected from the records, n/a (null) when the capture has none.
  let measured = 0;
  for await (const rec of await CaptureReader.open(FIXTURE)) {
    if (rec.residenceNs !== undefined) measured++;
  }
  if (measured === 0) assert.equal(doc.residence, null);
  else {
    assert.equal(doc.residence.request.count + doc.residence.reply.count, measured);
  }

  const piped = await vfstrace(["stats", "-", "--json"], FIXTURE);
  assert.equal(piped.code, 0, piped.stderr);
  const p = JSON.parse(piped.stdout);
  assert.equal(p.capture, "stdin");
  assert.deepEqual(p.totals, doc.totals);
});

Deno.test("stats: exit status for a missing file, bad usage, a corrupt capture", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-stats-" });
  try {
    const missing = await vfstrace(["stats", `${dir}/nope.pcapng`]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /cannot open .*nope\.pcapng/);
    const bad = await vfstrace(["stats", FIXTURE, "--sort", "size"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /Allowed choices are time, count, errors, name/);

    // Damage the 100th record's header: the reader stops there, with the offset.
    const offsets: number[] = [];
    for await (const rec of await CaptureReader.open(FIXTURE)) offsets.push(rec.offset);
    const at = offsets[100]!;
    const bytes = await Deno.readFile(FIXTURE);
    bytes.fill(0xee, at + 28, at + 40);
    const corrupt = `${dir}/corrupt.pcapng`;
    await Deno.writeFile(corrupt, bytes);
    const r = await vfstrace(["stats", corrupt]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /at offset \d+\); --recover skips damaged blocks/);
    const rec = await vfstrace(["stats", corrupt, "--recover", "--json"]);
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(
      rec.stderr,
      new RegExp(`skipped 1 damaged stretch\\(es\\), the first at offset ${at}`),
    );
    assert.equal(JSON.parse(rec.stdout).control.lost_records, 1);
    const quiet = await vfstrace(["stats", corrupt, "--recover", "-q"]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, "");

    // Cut inside the 100th record: the figures of the 99 before it, then exit 1 with the offset.
    const cut = `${dir}/cut.pcapng`;
    await Deno.writeFile(cut, (await Deno.readFile(FIXTURE)).subarray(0, at + 10));
    const whole = await vfstrace(["stats", FIXTURE, "--json"]);
    const c = await vfstrace(["stats", cut, "--json"]);
    assert.equal(c.code, 1, c.stderr);
    assert.match(c.stderr, new RegExp(`cut\\.pcapng ends inside a record at offset ${at} `));
    assert.equal(c.stderr.match(/ends inside a record/g)?.length, 1, c.stderr);
    assert.ok(JSON.parse(c.stdout).totals.operations < JSON.parse(whole.stdout).totals.operations);
    const page = `${dir}/cut.html`;
    const r2 = await vfstrace(["report", cut, "-o", page, "-q"]);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(r2.stderr, /ends inside a record/);
    assert.ok((await Deno.stat(page)).size > 1000, "the page of what was read is written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- report + Chromium ---------------------------------------------------------------------

/** Chromium's path, or why there is none. */
function findChromium(): { path: string } | { problem: string } {
  const env = Deno.env.get("VFSTRACE_CHROMIUM");
  if (env !== undefined && env !== "") {
    try {
      if (Deno.statSync(env).isFile) return { path: env };
    } catch {
      // reported below
    }
    return { problem: `VFSTRACE_CHROMIUM=${env} is not a file` };
  }
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return { path: `${dir}/${name}` };
      } catch {
        // not in this directory
      }
    }
  }
  return { problem: "chromium is not installed (not on PATH)" };
}

const CHROMIUM = findChromium();
const SKIP_CHROMIUM = Deno.env.get("VFSTRACE_SKIP_CHROMIUM") === "1";

function requireChromium(): string {
  if ("problem" in CHROMIUM) {
    throw new Error(
      `${CHROMIUM.problem}: the report's charts are checked in a real browser. Install it ` +
        "(apt-get install chromium), point VFSTRACE_CHROMIUM at it, or set " +
        "VFSTRACE_SKIP_CHROMIUM=1 to skip this test.",
    );
  }
  return CHROMIUM.path;
}

const WIDTH = 1280;
const HEIGHT = 2000;

/** Runs headless Chromium on `url` with `extra` flags; stdout as text. */
async function chromium(url: string, profile: string, extra: string[]): Promise<string> {
  const out = await new Deno.Command(requireChromium(), {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--hide-scrollbars",
      "--force-device-scale-factor=1",
      `--user-data-dir=${profile}`,
      `--window-size=${WIDTH},${HEIGHT}`,
      ...extra,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `chromium failed:\n${stderr}`);
  return new TextDecoder().decode(out.stdout);
}

const ENTITIES: Readonly<Record<string, string>> = {
  "&quot;": '"',
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&#39;": "'",
};

/** The attributes of the dumped DOM's `<body>`. */
function bodyAttributes(dom: string): Map<string, string> {
  const tag = /<body\b([^>]*)>/.exec(dom);
  assert.ok(tag !== null, "no <body> in the dumped DOM");
  const attrs = new Map<string, string>();
  for (const m of tag[1]!.matchAll(/([\w-]+)="([^"]*)"/g)) {
    attrs.set(m[1]!, m[2]!.replace(/&quot;|&amp;|&lt;|&gt;|&#39;/g, (e) => ENTITIES[e] ?? e));
  }
  return attrs;
}

/** A decoded PNG: 8-bit RGBA pixels, row by row. */
interface Image {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

/** A minimal PNG decoder: 8-bit RGB or RGBA, not interlaced (what Chromium writes). */
async function decodePng(bytes: Uint8Array): Promise<Image> {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert.deepEqual([...bytes.subarray(0, 8)], sig, "not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let colorType = -1;
  const idat: Uint8Array[] = [];
  for (let o = 8; o < bytes.byteLength;) {
    const len = view.getUint32(o);
    const type = new TextDecoder().decode(bytes.subarray(o + 4, o + 8));
    const data = bytes.subarray(o + 8, o + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(o + 8);
      height = view.getUint32(o + 12);
      const depth = data[8];
      colorType = data[9]!;
      assert.equal(depth, 8, "bit depth");
      assert.ok(colorType === 2 || colorType === 6, `colour type ${colorType}`);
      assert.equal(data[12], 0, "interlaced PNG");
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (type === "IEND") {
      break;
    }
    o += 12 + len;
  }
  const stream = new Blob(idat as BlobPart[]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  assert.equal(raw.byteLength, height * (stride + 1), "IDAT size");
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : undefined;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[i - bpp]! : 0;
      const b = prev?.[i] ?? 0;
      const c = i >= bpp ? prev?.[i - bpp] ?? 0 : 0;
      let pred: number;
      switch (f) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`PNG filter ${f}`);
      }
      out[i] = (line[i]! + pred) & 0xff;
    }
  }
  if (bpp === 4) return { width, height, rgba: px };
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(px.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  return { width, height, rgba };
}

interface Box {
  readonly id: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** Pixel statistics of a box: distinct colours, non-white pixels, pixels of each `#rrggbb`. */
function region(img: Image, box: Box, colors: readonly string[]) {
  const want = new Map(colors.map((c) => [parseInt(c.slice(1), 16), c]));
  const counts = new Map<string, number>(colors.map((c) => [c, 0]));
  const distinct = new Set<number>();
  let ink = 0;
  for (let y = box.y; y < Math.min(img.height, box.y + box.h); y++) {
    for (let x = box.x; x < Math.min(img.width, box.x + box.w); x++) {
      const i = (y * img.width + x) * 4;
      const rgb = (img.rgba[i]! << 16) | (img.rgba[i + 1]! << 8) | img.rgba[i + 2]!;
      distinct.add(rgb);
      if (rgb !== 0xffffff) ink++;
      const c = want.get(rgb);
      if (c !== undefined) counts.set(c, counts.get(c)! + 1);
    }
  }
  return { distinct: distinct.size, ink: ink / (box.w * box.h), counts };
}

interface Embedded {
  "expected_charts": number;
  rate: { series: { name: string; color: string; total: number }[] };
  histograms: { op: string; color: string; count: number }[];
}

function embeddedData(html: string): Embedded {
  const m = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html);
  assert.ok(m !== null, "no embedded data");
  return JSON.parse(m[1]!);
}

Deno.test({
  name: "report: a self-contained page whose charts Chromium draws and shows",
  ignore: SKIP_CHROMIUM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-report-" });
    try {
      const page = `${dir}/report.html`;
      const r = await vfstrace(["report", FIXTURE, "-o", page]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      const html = await Deno.readTextFile(page);
      const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]*/g)].map((m) => m[0]);
      assert.deepEqual(urls.filter((u) => u !== SVG_NS), [], "no URL but the SVG namespace");
      const data = embeddedData(html);
      assert.ok(data.histograms.length >= 10, `${data.histograms.length} histograms`);
      assert.equal(data.expected_charts, data.histograms.length + 1);

      // 1. The DOM after the page's script ran: every chart drawn, with data.
      const url = `file://${page}`;
      const dom = await chromium(url, `${dir}/profile`, ["--dump-dom"]);
      const body = bodyAttributes(dom);
      assert.equal(body.get("data-chart-error"), undefined, "the page's script threw");
      assert.equal(body.get("data-charts-expected"), String(data.expected_charts));
      assert.equal(body.get("data-charts"), String(data.expected_charts), "charts drawn");
      const boxes: Box[] = JSON.parse(body.get("data-chart-boxes") ?? "[]");
      assert.equal(boxes.length, data.expected_charts);
      assert.equal([...dom.matchAll(/<svg\b/g)].length, data.expected_charts);
      assert.equal(
        [...dom.matchAll(/<polygon\b/g)].length,
        data.rate.series.length,
        "one area per series",
      );
      assert.ok([...dom.matchAll(/<rect\b/g)].length >= data.histograms.length, "bars");

      // 2. The screenshot: the charts are on screen, in their colours.
      const png = `${dir}/report.png`;
      await chromium(url, `${dir}/profile`, [`--screenshot=${png}`]);
      const img = await decodePng(await Deno.readFile(png));
      assert.equal(img.width, WIDTH);
      assert.equal(img.height, HEIGHT);
      const rate = boxes.find((b) => b.id === "rate")!;
      assert.ok(rate.y + rate.h <= HEIGHT, `rate chart below the fold: ${JSON.stringify(rate)}`);
      const colors = data.rate.series.map((s) => s.color);
      const rs = region(img, rate, colors);
      assert.ok(rs.distinct >= 8, `rate chart: ${rs.distinct} colours`);
      assert.ok(rs.ink > 0.02, `rate chart: ${(rs.ink * 100).toFixed(1)}% ink`);
      // The busiest series' area is far bigger than its 10×10 legend swatch.
      const top = data.rate.series[0]!;
      assert.ok(
        rs.counts.get(top.color)! >= 300,
        `${top.name} area: ${rs.counts.get(top.color)} px`,
      );
      const shown = colors.filter((c) => rs.counts.get(c)! > 0).length;
      assert.ok(shown >= colors.length - 1, `${shown} of ${colors.length} series visible`);
      let checked = 0;
      for (const b of boxes) {
        if (!b.id.startsWith("hist-") || b.y + b.h > HEIGHT) continue;
        const h = data.histograms[Number(b.id.slice(5))]!;
        const st = region(img, b, [h.color]);
        assert.ok(st.counts.get(h.color)! >= 20, `${h.op}: ${st.counts.get(h.color)} bar pixels`);
        assert.ok(st.distinct >= 4, `${h.op}: ${st.distinct} colours`);
        checked++;
      }
      assert.ok(checked >= 6, `${checked} histograms on screen`);

      // 3. Control: the same page without its drawing script shows no chart, and the check
      // above would see it (the legend's swatches alone stay far below the threshold).
      const stripped = html.replace(/<script>[\s\S]*?<\/script>/, "");
      assert.notEqual(stripped, html);
      await Deno.writeTextFile(`${dir}/nojs.html`, stripped);
      const noJs = `${dir}/nojs.png`;
      await chromium(`file://${dir}/nojs.html`, `${dir}/profile`, [`--screenshot=${noJs}`]);
      const blank = region(await decodePng(await Deno.readFile(noJs)), rate, colors);
      console.log(
        `screenshot ${png} (VFSTRACE_KEEP=1 keeps it): rate chart ${rs.distinct} colours, ${
          (rs.ink * 100).toFixed(1)
        }% ink, ` +
          `${rs.counts.get(top.color)} px of ${top.name}; without the script ` +
          `${blank.counts.get(top.color)} px; ${checked} histograms checked`,
      );
      assert.ok(
        blank.counts.get(top.color)! < 300,
        `without script the rate chart still has ${blank.counts.get(top.color)} px of ${top.name}`,
      );
    } finally {
      if (Deno.env.get("VFSTRACE_KEEP") !== "1") await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "report: chromium is there (or explicitly skipped)",
  ignore: SKIP_CHROMIUM,
  fn() {
    requireChromium();
  },
});

Deno.test("report: usage errors and an unwritable output", async () => {
  const noOut = await vfstrace(["report", FIXTURE]);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /required option '-o, --output/);
  const bad = await vfstrace(["report", FIXTURE, "-o", "/nonexistent-dir/r.html"]);
  assert.equal(bad.code, 3, bad.stderr);
  assert.match(bad.stderr, /cannot write \/nonexistent-dir\/r\.html/);
  const missing = await vfstrace(["report", "/nonexistent.pcapng", "-o", "-"]);
  assert.equal(missing.code, 3);
  const stdout = await vfstrace(["report", FIXTURE, "-o", "-", "--title", "T<1>"]);
  assert.equal(stdout.code, 0, stdout.stderr);
  assert.match(stdout.stdout, /<title>T&lt;1&gt;<\/title>/);
});
