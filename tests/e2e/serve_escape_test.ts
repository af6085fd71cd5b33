/**
 * End to end: a guest tries to reach outside the directory `vfstrace serve`
 * shares: `..` beyond the root, absolute and relative symlinks pointing
 * outside (made by the guest and by the host), hard links and lchown of such
 * symlinks, a host process swapping a directory for a symlink to outside
 * while the guest works in it, guest renames racing with its own lookups,
 * and device nodes and FIFOs the guest creates. Checked from the host: the
 * sentinel file and directory next to the share are untouched, nothing was
 * created outside, and no device node or FIFO was ever opened by the server
 * (from the capture).
 */
import assert from "node:assert/strict";
import { CaptureReader, RecordKind } from "../../capture/mod.ts";
import { decodeReply, decodeRequest, type FuseRequest, FuseSession } from "../../decode/fuse.ts";
import { type Check, LAUNCHER, waitForSocket } from "./_rig.ts";

const dec = new TextDecoder();

/** The guest's attempts; `OUT` is the host directory holding the share. */
function script(out: string): string {
  return String.raw`
OUT=${out}
W=esc
rm -rf "$W" && mkdir "$W" && cd "$W" || exit 1
# The host's path exists in the guest too (its own tmpfs): whatever a symlink
# to it reaches is the guest's, never the host's.
mkdir -p "$OUT/outside" && echo guest-side > "$OUT/sentinel"

t_dotdot() {
  cd /mnt && cd .. && cd .. && vt_eq "cd .. from the share root" / "$(pwd)" || return 1
  if cat /mnt/../sentinel 2>/dev/null; then echo "read /mnt/../sentinel"; return 1; fi
  if cat /mnt/esc/../../../../sentinel 2>/dev/null; then echo "read a deep ../sentinel"; return 1; fi
  echo x > /mnt/../../dotdot-created 2>/dev/null
  [ ! -e /mnt/dotdot-created ] || { echo "created in the share through .."; return 1; }
  echo "the share's .. is the guest's own /"
}
t_host_symlinks() {
  # Made by the host before the guest started: abs -> $OUT/sentinel, rel ->
  # ../sentinel, absdir -> $OUT/outside, reldir -> ../outside.
  cd /mnt || return 1
  vt_eq "absolute target seen as is" "$OUT/sentinel" "$(readlink abs)" || return 1
  vt_eq "through abs, the guest's own file" guest-side "$(cat abs)" || return 1
  if cat rel 2>/dev/null; then echo "read through rel"; fi
  echo pwned > abs; echo pwned > rel 2>/dev/null
  echo pwned > absdir/created; echo pwned > reldir/created 2>/dev/null
  mkdir absdir/newdir reldir/newdir 2>/dev/null
  ln abs esc/hardlink-abs && ln rel esc/hardlink-rel || return 1
  chown -h 4321:4321 abs rel || return 1
  [ -L esc/hardlink-abs ] || { echo "the hard link is not a symlink"; return 1; }
  echo "writes through them stayed in the guest"
}
t_guest_symlinks() {
  ln -s "$OUT/sentinel" gabs && ln -s ../../sentinel grel && ln -s "$OUT/outside" gdir || return 1
  echo pwned > gabs && echo pwned >> grel 2>/dev/null; echo pwned > gdir/gcreated || return 1
  vt_eq "the guest's own sentinel" pwned "$(cat "$OUT/sentinel")" || return 1
  mv gabs gabs2 && ln gabs2 gabs3 && rm gabs2 gabs3 || return 1
}
t_host_race() {
  # The host swaps race/d (a directory) for a symlink to $OUT/outside and back
  # while the guest works in it.
  i=0 n=0
  while [ "$i" -lt 300 ]; do
    echo pwned > /mnt/race/d/f$i 2>/dev/null && n=$((n + 1))
    mkdir /mnt/race/d/sub$i 2>/dev/null
    cat /mnt/race/d/secret > /dev/null 2>&1
    ls /mnt/race/d > /dev/null 2>&1
    i=$((i + 1))
  done
  echo "$n of $i writes landed (in the share or the guest's own $OUT/outside)"
}
t_guest_race() {
  mkdir -p r/a/inner && echo x > r/a/inner/f || return 1
  ( j=0; while [ "$j" -lt 200 ]; do mv r/a r/b 2>/dev/null; mv r/b r/a 2>/dev/null; j=$((j + 1)); done ) &
  k=0
  while [ "$k" -lt 200 ]; do
    cat r/a/inner/f r/b/inner/f > /dev/null 2>&1
    (cd r/a/inner 2>/dev/null && cd ../../../../.. && ls > /dev/null && echo x > esc-race 2>/dev/null)
    ls r/a/inner/../.. r/b/inner/../.. > /dev/null 2>&1
    k=$((k + 1))
  done
  wait
  [ -e r/a/inner/f ] || [ -e r/b/inner/f ] || { echo "the directory got lost"; return 1; }
}
t_devices() {
  mknod null c 1 3 && mknod zero c 1 5 && mknod mem c 1 1 && mknod loop0 b 7 0 && mkfifo fifo || return 1
  echo hello > null || return 1
  vt_eq "zeros from the guest's own /dev/zero" 0000 "$(head -c 2 zero | od -An -tx1 | tr -d ' \n')" || return 1
  (echo through > fifo) &
  # (No busybox timeout: its watcher would linger in the share and keep it busy.)
  got=$(cat fifo)
  wait
  vt_eq "the FIFO is the guest's" through "$got" || return 1
  head -c 1 mem > /dev/null 2>&1
  head -c 1 loop0 > /dev/null 2>&1
  echo "device nodes and a FIFO opened in the guest"
}

check dotdot t_dotdot
check host_symlinks t_host_symlinks
check guest_symlinks t_guest_symlinks
check host_race t_host_race
check guest_race t_guest_race
check devices t_devices
exit 0
`;
}

/** Names and (for files) contents under `dir`, recursively, for before/after comparison. */
async function snapshot(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
      const p = rel === "" ? e.name : `${rel}/${e.name}`;
      if (p === skip) continue;
      const st = await Deno.lstat(`${dir}/${p}`);
      let what = `${p} mode=${st.mode?.toString(8)} uid=${st.uid} nlink=${st.nlink} ` +
        `mtime=${st.mtime?.getTime()} ctime=${st.ctime?.getTime()}`;
      if (st.isFile) what += ` ${await Deno.readTextFile(`${dir}/${p}`)}`;
      out.push(what);
      if (st.isDirectory) await walk(p);
    }
  };
  await walk("");
  return out.sort();
}

Deno.test("serve escape: nothing outside the shared directory is reached (checked from the host)", async () => {
  const work = await Deno.makeTempDir({ prefix: "vfstrace-e2e-escape-run-" });
  const out = await Deno.makeTempDir({ prefix: "vfstrace-e2e-escape-" });
  const share = `${out}/share`;
  let racer: Deno.ChildProcess | undefined;
  try {
    await Deno.mkdir(share);
    await Deno.mkdir(`${out}/outside`);
    await Deno.writeTextFile(`${out}/outside/secret`, "host secret\n");
    await Deno.writeTextFile(`${out}/sentinel`, "host sentinel\n");
    await Deno.symlink(`${out}/sentinel`, `${share}/abs`);
    await Deno.symlink("../sentinel", `${share}/rel`);
    await Deno.symlink(`${out}/outside`, `${share}/absdir`);
    await Deno.symlink("../outside", `${share}/reldir`);
    await Deno.mkdir(`${share}/race/d`, { recursive: true });
    const before = await snapshot(out, "share");

    const socket = `${work}/serve.sock`;
    const capture = `${work}/run.pcapng`;
    await Deno.writeTextFile(`${work}/escape.sh`, script(out));
    const serve = new Deno.Command(LAUNCHER, {
      args: ["serve", "--socket-path", socket, "--shared-dir", share, "--capture", capture],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // The host side of the race: race/d is a directory, then a symlink to outside, and back.
    await Deno.writeTextFile(`${work}/go`, "");
    racer = new Deno.Command("sh", {
      args: [
        "-c",
        `cd "${share}/race" && while [ -e "${work}/go" ]; do ` +
        `mv d d.real && ln -s "${out}/outside" d && sleep 0.001 && rm d && mv d.real d; done`,
      ],
      stdin: "null",
    }).spawn();
    let checks: Check[];
    try {
      await waitForSocket(socket);
      const g = await new Deno.Command(LAUNCHER, {
        args: ["guest", "--socket", socket, "--script", `${work}/escape.sh`, "--json"],
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      checks = (JSON.parse(dec.decode(g.stdout)) as { checks: Check[] }).checks;
    } finally {
      await Deno.remove(`${work}/go`);
      await racer.status;
      const timer = setTimeout(() => serve.kill("SIGKILL"), 15_000);
      const end = await serve.output();
      clearTimeout(timer);
      assert.equal(end.code, 0, dec.decode(end.stderr));
    }
    const text = checks.map((c) => `${c.status} ${c.name} ${c.detail}`).join("\n");
    assert.deepEqual(
      checks.map((c) => `${c.name} ${c.status}`),
      [
        "dotdot ok",
        "host_symlinks ok",
        "guest_symlinks ok",
        "host_race ok",
        "guest_race ok",
        "devices ok",
        "umount ok",
      ],
      text,
    );

    // Outside the share: exactly as before, contents, owners, times and link counts.
    assert.deepEqual(await snapshot(out, "share"), before);
    // Inside: the symlinks are still symlinks (lchown changed them, not their targets).
    for (const name of ["abs", "rel", "esc/hardlink-abs", "esc/grel", "esc/gdir"]) {
      const st = await Deno.lstat(`${share}/${name}`);
      assert.ok(st.isSymlink, `${name} is no longer a symlink`);
    }
    assert.equal((await Deno.lstat(`${share}/abs`)).uid, 4321);
    const nul = await Deno.lstat(`${share}/esc/null`);
    assert.ok(nul.isCharDevice, "the guest's mknod made a character device on the host");
    assert.equal(nul.rdev, 0x103);
    assert.ok((await Deno.lstat(`${share}/esc/loop0`)).isBlockDevice);
    assert.ok((await Deno.lstat(`${share}/esc/fifo`)).isFifo);

    // The server never opened a device node or FIFO (the guest kernel handles them itself).
    const special = new Set<bigint>();
    const session = new FuseSession();
    const inflight = new Map<string, FuseRequest>();
    let opens = 0;
    for await (const r of await CaptureReader.open(capture)) {
      if (r.kind === RecordKind.FUSE_REQUEST) {
        const req = decodeRequest(r.body, session, { truncatedFrom: r.originalLength });
        inflight.set(`${r.queue}:${req.header.unique}`, req);
      } else if (r.kind === RecordKind.FUSE_REPLY && r.body.byteLength >= 16) {
        const unique = new DataView(r.body.buffer, r.body.byteOffset).getBigUint64(8, true);
        const req = inflight.get(`${r.queue}:${unique}`);
        if (req === undefined) continue;
        const rep = decodeReply(r.body, req, session, { truncatedFrom: r.originalLength });
        const name = req.op?.name;
        if ((name === "MKNOD" || name === "LOOKUP") && rep.header.error === 0) {
          const type = Number(rep.arg?.mode ?? 0) & 0o170000;
          if (type === 0o020000 || type === 0o060000 || type === 0o010000) {
            special.add(BigInt(rep.arg?.nodeid as bigint));
          }
        }
        if (name === "OPEN" && special.has(req.header.nodeid)) {
          opens++;
          assert.notEqual(rep.header.error, 0, `OPEN of special node ${req.header.nodeid} served`);
        }
      }
    }
    assert.ok(special.size >= 5, `device nodes and FIFOs seen: ${special.size}`);
    console.log(`  special nodes: ${special.size}, OPENs sent for them: ${opens}`);
  } finally {
    await Deno.remove(`${work}/go`).catch(() => {});
    await racer?.status;
    await Deno.remove(work, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});
