/**
 * Workloads the guest runs on the virtiofs mount: busybox sh scripts that
 * report checks and leave files for the host to verify, using the helpers of
 * `GUEST_LIBRARY` in vm/protocol.ts (`check`, `vt_eq`, `expect_*`, …).
 *
 * A workload starts with its working directory at the share root (`/mnt`) and
 * its exit status is reported; it should work in its own subdirectory, since
 * the share may be a directory the user cares about.
 *
 * @module
 */

/** A script for the guest to run. */
export interface Workload {
  /** Name shown in reports. */
  readonly name: string;
  /** One line on what it exercises. */
  readonly description: string;
  /** busybox sh source, sourced after the helper library. */
  readonly script: string;
}

/** Names of the built-in workloads. */
export type BuiltinWorkloadName = "smoke" | "posix" | "locks" | "posix_more";

const SMOKE = String.raw`# smoke: a few file operations on the share
W=vfstrace-smoke
rm -rf "$W" && mkdir "$W" && cd "$W" || { fail setup "cannot create $W in the share"; exit 1; }

t_write() { echo "hello from the guest" > hello.txt && vt_eq size 21 "$(stat -c %s hello.txt)"; }
t_read() { vt_drop_caches && vt_eq content "hello from the guest" "$(cat hello.txt)"; }
t_mkdir_readdir() {
  mkdir sub && : > sub/a && : > sub/b && vt_drop_caches && vt_eq entries "a b" "$(ls sub | tr '\n' ' ' | sed 's/ $//')"
}
t_rename() { mv sub/a sub/c && [ ! -e sub/a ] && [ -f sub/c ]; }
t_unlink() { rm sub/b && [ ! -e sub/b ]; }
t_data() {
  # The reference copy lives on the guest's tmpfs, independent of the backend.
  dd if=/dev/urandom of=/tmp/data.src bs=1M count=16 2>/dev/null || return 1
  sum=$(sha256sum /tmp/data.src) && sum=${"$"}{sum%% *} || return 1
  dd if=/tmp/data.src of=data.bin bs=1M 2>/dev/null && vt_drop_caches || return 1
  cmp /tmp/data.src data.bin || return 1
  rm -f /tmp/data.src
  echo "$sum" > /tmp/data.sha256
  echo "16 MiB written and read back"
}

check write t_write
check read t_read
check mkdir_readdir t_mkdir_readdir
check rename t_rename
check unlink t_unlink
check data_16m t_data

expect_stat hello.txt
expect_sha256 hello.txt
expect_stat sub/c mode size
expect_absent sub/a
expect_absent sub/b
expect_stat data.bin size
[ -s /tmp/data.sha256 ] && expect_sha256 data.bin "$(cat /tmp/data.sha256)"
exit 0
`;

const POSIX = String
  .raw`# posix: the file operations a POSIX program expects, each read back through the backend
W=vfstrace-posix
rm -rf "$W" && mkdir "$W" && cd "$W" || { fail setup "cannot create $W in the share"; exit 1; }

t_create() {
  echo hello > f_create && [ -f f_create ] && vt_eq size 6 "$(stat -c %s f_create)"
}
t_read() { vt_drop_caches && vt_eq content hello "$(cat f_create)"; }
t_excl_create() {
  # O_CREAT|O_EXCL on an existing file must fail with EEXIST.
  if (set -C; : > f_create) 2>/dev/null; then echo "O_EXCL create of an existing file succeeded"; return 1; fi
}
t_overwrite() {
  printf 'a much longer first version\n' > f_over && printf 'second\n' > f_over || return 1
  vt_drop_caches && vt_eq content second "$(cat f_over)" && vt_eq size 7 "$(stat -c %s f_over)"
}
t_append() {
  printf a > f_app && printf b >> f_app && printf c >> f_app || return 1
  vt_drop_caches && vt_eq content abc "$(cat f_app)"
}
t_pwrite() {
  printf 0123456789 > f_pwrite || return 1
  printf XY | dd of=f_pwrite bs=1 seek=3 conv=notrunc 2>/dev/null || return 1
  vt_drop_caches && vt_eq content 012XY56789 "$(cat f_pwrite)"
}
t_truncate() {
  dd if=/dev/zero of=f_trunc bs=1000 count=1 2>/dev/null || return 1
  truncate -s 10 f_trunc && vt_eq "size after shrink" 10 "$(stat -c %s f_trunc)" || return 1
  truncate -s 4096 f_trunc && vt_drop_caches || return 1
  vt_eq "size after extend" 4096 "$(stat -c %s f_trunc)" || return 1
  vt_eq "non-zero bytes after extend" 0 "$(tr -d '\000' < f_trunc | wc -c)"
}
t_rename() {
  echo moved > f_rename_src && mv f_rename_src f_renamed || return 1
  [ ! -e f_rename_src ] || { echo "source still exists"; return 1; }
  vt_drop_caches && vt_eq content moved "$(cat f_renamed)"
}
t_rename_over() {
  echo new > f_over_src && echo old > f_over_dst || return 1
  ino=$(stat -c %i f_over_src)
  mv -f f_over_src f_over_dst || return 1
  [ ! -e f_over_src ] || { echo "source still exists"; return 1; }
  vt_drop_caches || return 1
  vt_eq content new "$(cat f_over_dst)" && vt_eq inode "$ino" "$(stat -c %i f_over_dst)"
}
t_hardlink() {
  echo linked > f_link && ln f_link f_link2 || return 1
  vt_eq nlink 2 "$(stat -c %h f_link)" && vt_eq "inode of link" "$(stat -c %i f_link)" "$(stat -c %i f_link2)" || return 1
  echo more >> f_link2 && vt_drop_caches || return 1
  vt_eq "content via the other name" "linked more" "$(cat f_link | tr '\n' ' ' | sed 's/ $//')"
}
t_symlink() {
  ln -s f_create l_sym && ln -s no-such-target l_dangling || return 1
  [ -L l_sym ] || { echo "l_sym is not a symlink"; return 1; }
  vt_drop_caches || return 1
  vt_eq readlink f_create "$(readlink l_sym)" && vt_eq "dangling readlink" no-such-target "$(readlink l_dangling)" &&
    vt_eq "content through the link" hello "$(cat l_sym)"
}
t_chmod() {
  : > f_chmod && chmod 0640 f_chmod && mkdir d_chmod && chmod 0711 d_chmod && : > f_suid && chmod 4755 f_suid || return 1
  vt_drop_caches || return 1
  vt_eq "file mode" 640 "$(stat -c %a f_chmod)" && vt_eq "dir mode" 711 "$(stat -c %a d_chmod)" &&
    vt_eq "setuid mode" 4755 "$(stat -c %a f_suid)"
}
t_chown() {
  : > f_chown && chown 1234:5678 f_chown && vt_drop_caches || return 1
  vt_eq owner 1234:5678 "$(stat -c %u:%g f_chown)"
}
t_utimes() {
  : > f_time && touch -d '2001-02-03 04:05:06' f_time && vt_drop_caches || return 1
  vt_eq mtime 981173106 "$(stat -c %Y f_time)"
}
t_readdir() {
  mkdir d_many || return 1
  i=1
  while [ "$i" -le 1000 ]; do : > "d_many/e$i" || return 1; i=$((i + 1)); done
  vt_drop_caches || return 1
  vt_eq "entries listed" 1000 "$(ls d_many | wc -l)" || return 1
  vt_eq "entries found" 1000 "$(find d_many -type f | wc -l)" || return 1
  if rmdir d_many 2>/dev/null; then echo "rmdir of a non-empty directory succeeded"; return 1; fi
  rm d_many/* && rmdir d_many || return 1
  [ ! -e d_many ] || { echo "d_many still exists"; return 1; }
  echo "1000 entries created, listed, removed"
}
t_unlink() {
  echo gone > f_unlink && rm f_unlink || return 1
  [ ! -e f_unlink ] || { echo "f_unlink still exists"; return 1; }
  # An open file stays readable after its last name is gone.
  echo keep > f_unlink_open && exec 3< f_unlink_open && rm f_unlink_open || return 1
  read -r line <&3
  exec 3<&-
  vt_eq "read after unlink" keep "$line"
}
t_mkfifo() {
  mkfifo -m 0600 p_fifo && [ -p p_fifo ] || return 1
  vt_eq mode 600 "$(stat -c %a p_fifo)" || return 1
  (echo through > p_fifo) &
  got=$(timeout 10 sh -c 'read -r l < p_fifo && echo "$l"')
  wait
  vt_eq "data through the fifo" through "$got"
}
t_xattr() {
  # vfs_xattr (vm/guest/vfs_xattr.c): busybox has no setfattr/getfattr.
  vt_need vfs_xattr || return 77
  : > f_xattr || return 1
  # 4000 bytes: past any small fixed buffer, yet small enough for one ext4 xattr block on the host.
  big=$(awk 'BEGIN { for (i = 0; i < 1000; i++) printf "%04d", i }')
  vt_eq "test value length" 4000 "${"$"}{#big}" || return 1
  vfs_xattr set user.vfstrace.small hello f_xattr create || return 1
  vfs_xattr set user.vfstrace.big "$big" f_xattr || return 1
  vt_eq "size probe" 4000 "$(vfs_xattr size user.vfstrace.big f_xattr)" || return 1
  vt_eq "small value" hello "$(vfs_xattr get user.vfstrace.small f_xattr)" || return 1
  got=$(vfs_xattr get user.vfstrace.big f_xattr) || return 1
  [ "$got" = "$big" ] || { echo "big value differs: ${"$"}{#got} bytes back, starting $(echo "$got" | cut -c1-40)"; return 1; }
  # Only our names: the backend may show others (security.*, system.*) from the host.
  ours() { vfs_xattr list f_xattr | grep '^user\.vfstrace\.' | sort | tr '\n' ' ' | sed 's/ $//'; }
  vt_eq "listed names" "user.vfstrace.big user.vfstrace.small" "$(ours)" || return 1
  vt_fails EEXIST vfs_xattr set user.vfstrace.small again f_xattr create || return 1
  vt_fails ENODATA vfs_xattr set user.vfstrace.none x f_xattr replace || return 1
  vfs_xattr set user.vfstrace.small replaced f_xattr replace || return 1
  vt_eq "replaced value" replaced "$(vfs_xattr get user.vfstrace.small f_xattr)" || return 1
  vfs_xattr remove user.vfstrace.big f_xattr || return 1
  vt_fails ENODATA vfs_xattr get user.vfstrace.big f_xattr || return 1
  vt_fails ENODATA vfs_xattr remove user.vfstrace.big f_xattr || return 1
  vt_eq "names after remove" user.vfstrace.small "$(ours)" || return 1
  echo "set/get/list/remove, 4000-byte value; EEXIST on create, ENODATA on replace and after remove"
}
t_statfs() {
  set -- $(stat -f -c '%b %a %S %c' .)
  [ "$1" -gt 0 ] && [ "$3" -gt 0 ] || { echo "statfs: blocks=$1 bsize=$3"; return 1; }
  [ "$2" -le "$1" ] || { echo "statfs: free $2 > total $1"; return 1; }
  echo "blocks=$1 free=$2 bsize=$3 files=$4"
}
t_bigfile() {
  # The reference copy lives on the guest's tmpfs, independent of the backend.
  # (No tee: busybox tee into a FUSE file is orders of magnitude slower.)
  dd if=/dev/urandom of=/tmp/big.src bs=1M count=64 2>/dev/null || return 1
  sum=$(sha256sum /tmp/big.src) && sum=${"$"}{sum%% *} || return 1
  t0=$(vt_uptime)
  dd if=/tmp/big.src of=big.bin bs=1M 2>/dev/null && sync || return 1
  t1=$(vt_uptime)
  vt_drop_caches || return 1
  vt_eq size 67108864 "$(stat -c %s big.bin)" || return 1
  back=$(sha256sum big.bin) || return 1
  t2=$(vt_uptime)
  vt_eq "sha256 read back" "$sum" "${"$"}{back%% *}" || { cmp /tmp/big.src big.bin; return 1; }
  rm -f /tmp/big.src
  echo "$sum" > /tmp/big.sha256
  echo "$t0 $t1 $t2" | awk '{printf "64 MiB: write+sync %.2f s, read+sha256 %.2f s", $2 - $1, $3 - $2}'
}
t_fsync() {
  dd if=/dev/zero of=f_sync bs=4096 count=4 conv=fsync 2>/dev/null || { echo "dd conv=fsync failed"; return 1; }
  sync f_sync || { echo "fsync failed"; return 1; }
  sync -d f_sync || { echo "fdatasync failed"; return 1; }
  sync -f f_sync || { echo "syncfs failed"; return 1; }
}
t_fallocate() {
  fallocate -l 1048576 f_falloc || return 1
  vt_drop_caches && vt_eq size 1048576 "$(stat -c %s f_falloc)"
}

check create t_create
check read t_read
check excl_create t_excl_create
check overwrite t_overwrite
check append t_append
check pwrite t_pwrite
check truncate t_truncate
check rename t_rename
check rename_over t_rename_over
check hardlink t_hardlink
check symlink t_symlink
check chmod t_chmod
check chown t_chown
check utimes t_utimes
check readdir_1000 t_readdir
check unlink t_unlink
check mkfifo t_mkfifo
check xattr t_xattr
check statfs t_statfs
check bigfile_64m t_bigfile
check fsync t_fsync
check fallocate t_fallocate

# What the host must find once the guest is gone.
expect_stat f_create
expect_sha256 f_create
expect_sha256 f_over
expect_stat f_over size
expect_sha256 f_app
expect_sha256 f_pwrite
expect_stat f_trunc size
expect_absent f_rename_src
expect_sha256 f_renamed
expect_absent f_over_src
expect_sha256 f_over_dst
expect_same f_link f_link2
expect_stat f_link nlink size
expect_symlink l_sym
expect_symlink l_dangling
expect_stat l_sym mode
expect_stat f_chmod mode
expect_stat d_chmod mode
expect_stat f_suid mode
expect_stat f_chown uid gid
expect_stat f_time mtime
expect_absent d_many
expect_absent f_unlink
expect_absent f_unlink_open
expect_stat p_fifo mode
if command -v vfs_xattr >/dev/null 2>&1; then
  expect_xattr f_xattr user.vfstrace.small
  expect_no_xattr f_xattr user.vfstrace.big
fi
expect_stat big.bin size
[ -s /tmp/big.sha256 ] && expect_sha256 big.bin "$(cat /tmp/big.sha256)"
expect_stat f_sync size
expect_stat f_falloc size
exit 0
`;

const LOCKS = String
  .raw`# locks: two guest processes contend on fcntl (POSIX record) and flock locks
W=vfstrace-locks
rm -rf "$W" && mkdir "$W" && cd "$W" && : > f && : > g || { fail setup "cannot create $W in the share"; exit 1; }

# Waits (up to 10 s) until the holder writing to $1 says it holds its lock.
vt_locked() {
  vt_i=0
  until grep -q locked "$1" 2>/dev/null; do
    vt_i=$((vt_i + 1))
    [ "$vt_i" -lt 200 ] || { echo "the holder never got its lock: $(cat "$1" 2>&1)"; return 1; }
    sleep 0.05
  done
}
t_fcntl_exclusive() {
  vt_need vfs_lock || return 77
  vfs_lock fcntl f w 0 0 nb 1500 > /tmp/holder 2>&1 &
  vt_locked /tmp/holder || { wait; return 1; }
  r=0
  vt_fails EAGAIN vfs_lock fcntl f w 0 0 nb || r=1
  vt_fails EAGAIN vfs_lock fcntl f r 100 10 nb || r=1
  vt_eq "F_GETLK while held" "w 0 0" "$(vfs_lock getlk f r 5 1)" || r=1
  wait || { echo "holder: $(cat /tmp/holder)"; r=1; }
  vt_eq "F_GETLK after the holder exited" unlocked "$(vfs_lock getlk f w 0 0)" || r=1
  return $r
}
t_fcntl_ranges() {
  vt_need vfs_lock || return 77
  vfs_lock fcntl f w 0 10 nb 1500 > /tmp/holder 2>&1 &
  vt_locked /tmp/holder || { wait; return 1; }
  r=0
  vfs_lock fcntl f w 10 10 nb > /dev/null || { echo "a disjoint range was refused"; r=1; }
  vt_fails EAGAIN vfs_lock fcntl f w 5 10 nb || r=1
  vt_eq "F_GETLK on an overlapping range" "w 0 10" "$(vfs_lock getlk f w 9 5)" || r=1
  wait
  return $r
}
t_fcntl_shared() {
  vt_need vfs_lock || return 77
  vfs_lock fcntl f r 0 0 nb 1500 > /tmp/holder 2>&1 &
  vt_locked /tmp/holder || { wait; return 1; }
  r=0
  vfs_lock fcntl f r 0 0 nb > /dev/null || { echo "a second read lock was refused"; r=1; }
  vt_fails EAGAIN vfs_lock fcntl f w 0 0 nb || r=1
  wait
  return $r
}
t_fcntl_wait() {
  # A waiting F_SETLKW gets the lock once the holder lets go, and other
  # requests on the share are served meanwhile.
  vt_need vfs_lock || return 77
  vfs_lock fcntl f w 0 0 nb 5000 > /tmp/holder 2>&1 &
  holder=$!
  vt_locked /tmp/holder || { wait; return 1; }
  t0=$(vt_uptime)
  vfs_lock fcntl f w 0 0 wait > /tmp/waiter 2>&1 &
  waiter=$!
  sleep 0.5
  echo during > other && vt_drop_caches && got=$(cat other) && ls > /dev/null || return 1
  t1=$(vt_uptime)
  r=0
  vt_eq "I/O while a lock waits" during "$got" || r=1
  if grep -q locked /tmp/waiter; then echo "the waiter got the lock while it was held"; r=1; fi
  if ! wait "$waiter"; then
    echo "waiter: $(cat /tmp/waiter)"
    wait "$holder"
    return 1
  fi
  t2=$(vt_uptime)
  wait "$holder"
  # (A server stalled by the waiting lock would answer that I/O only after the
  # waiter got the lock: the grep above catches it, however slow the machine.)
  echo "$t0 $t1 $t2" | awk '{ if ($3 - $1 < 2.5) { printf "the waiter got the lock after %.2f s, before the holder let go\n", $3 - $1; exit 1 }
    printf "waited %.2f s; other I/O meanwhile took %.2f s\n", $3 - $1, $2 - $1 }' || r=1
  return $r
}
t_fcntl_owner() {
  vt_need vfs_lock || return 77
  vfs_lock owner f
}
t_flock() {
  vt_need vfs_lock || return 77
  vfs_lock flock g ex nb 1500 > /tmp/holder 2>&1 &
  vt_locked /tmp/holder || { wait; return 1; }
  r=0
  vt_fails EAGAIN vfs_lock flock g ex nb || r=1
  vt_fails EAGAIN vfs_lock flock g sh nb || r=1
  # fcntl and flock locks are independent on Linux.
  vfs_lock fcntl g w 0 0 nb > /dev/null || { echo "an fcntl lock was refused under flock"; r=1; }
  t0=$(vt_uptime)
  vfs_lock flock g ex wait > /dev/null || { echo "the waiting flock failed"; r=1; }
  t1=$(vt_uptime)
  wait
  echo "$t0 $t1" | awk '{ printf "waiting flock: %.2f s\n", $2 - $1 }'
  return $r
}
t_flock_shared() {
  vt_need vfs_lock || return 77
  vfs_lock flock g sh nb 1500 > /tmp/holder 2>&1 &
  vt_locked /tmp/holder || { wait; return 1; }
  r=0
  vfs_lock flock g sh nb > /dev/null || { echo "a second shared flock was refused"; r=1; }
  vt_fails EAGAIN vfs_lock flock g ex nb || r=1
  wait
  return $r
}

check fcntl_exclusive t_fcntl_exclusive
check fcntl_ranges t_fcntl_ranges
check fcntl_shared t_fcntl_shared
check fcntl_wait t_fcntl_wait
check fcntl_owner t_fcntl_owner
check flock t_flock
check flock_shared t_flock_shared
expect_stat other size
exit 0
`;

const POSIX_MORE = String
  .raw`# posix_more: rename flags, O_APPEND/O_TRUNC/O_DIRECT, links, permissions as
# other users, set-group-ID and sticky directories, times, holes, copies,
# unlinked and O_TMPFILE files, name limits (vfs_ops: vm/guest/vfs_ops.c)
W=vfstrace-posix-more
rm -rf "$W" && mkdir "$W" && cd "$W" || { fail setup "cannot create $W in the share"; exit 1; }
as1000() { vfs_ops as 1000 1000 "$@"; }
as1001() { vfs_ops as 1001 1001 "$@"; }

t_rename_noreplace() {
  vt_need vfs_ops || return 77
  echo a > rn_a && echo b > rn_b || return 1
  vt_fails EEXIST vfs_ops rename2 noreplace rn_a rn_b || return 1
  vfs_ops rename2 noreplace rn_a rn_c || return 1
  vt_eq "renamed content" a "$(cat rn_c)" && [ ! -e rn_a ]
}
t_rename_exchange() {
  vt_need vfs_ops || return 77
  echo one > rx_a && mkdir rx_b && : > rx_b/inside || return 1
  vfs_ops rename2 exchange rx_a rx_b || return 1
  vt_drop_caches && [ -f rx_a/inside ] && vt_eq "exchanged file" one "$(cat rx_b)"
}
t_rename_whiteout() {
  vt_need vfs_ops || return 77
  echo w > rw_a || return 1
  vfs_ops rename2 whiteout rw_a rw_b || return 1
  vt_eq content w "$(cat rw_b)"
}
t_rename_dirs() {
  mkdir -p rd_a/sub rd_full && : > rd_full/x || return 1
  if mv -T rd_a rd_a/sub/into 2>/dev/null; then echo "a directory moved into itself"; return 1; fi
  mkdir rd_empty && mv -T rd_a rd_empty || { echo "rename over an empty directory failed"; return 1; }
  if mv -T rd_empty rd_full 2>/dev/null; then echo "rename over a non-empty directory"; return 1; fi
  [ -d rd_empty/sub ]
}
t_append_two_writers() {
  vt_need vfs_ops || return 77
  vfs_ops append ap 300 from-first & vfs_ops append ap 300 from-second & wait || return 1
  vt_drop_caches || return 1
  vt_eq lines 600 "$(wc -l < ap | tr -d ' ')" && vt_eq "first's lines" 300 "$(grep -c from-first ap)"
}
t_o_trunc() {
  printf 'long content here' > tr_f && printf 'x' > tr_f && vt_drop_caches || return 1
  vt_eq size 1 "$(stat -c %s tr_f)"
}
t_o_direct() {
  vt_need vfs_ops || return 77
  vfs_ops direct di_f 1048576 && vt_eq size 1048576 "$(stat -c %s di_f)"
}
t_links() {
  echo data > ln_a && ln ln_a ln_b && ln ln_b ln_c || return 1
  vt_eq nlink 3 "$(stat -c %h ln_a)" && rm ln_a && vt_drop_caches || return 1
  vt_eq "nlink after unlink" 2 "$(stat -c %h ln_c)" && vt_eq content data "$(cat ln_b)" || return 1
  mkdir ln_dir && if ln ln_dir ln_dir2 2>/dev/null; then echo "hard link to a directory"; return 1; fi
}
t_owner_of_new_files() {
  vt_need vfs_ops || return 77
  mkdir own && chown 1000:1000 own || return 1
  as1000 sh -c 'echo mine > own/f && mkdir own/d && ln -s f own/l && mkfifo own/p' || return 1
  vt_drop_caches || return 1
  vt_eq "file owner" 1000:1000 "$(stat -c %u:%g own/f)" && vt_eq "dir owner" 1000:1000 "$(stat -c %u:%g own/d)" &&
    vt_eq "symlink owner" 1000:1000 "$(stat -c %u:%g own/l)" && vt_eq "fifo owner" 1000:1000 "$(stat -c %u:%g own/p)"
}
t_permissions() {
  vt_need vfs_ops || return 77
  echo secret > pm_root && chmod 600 pm_root && mkdir pm_dir && chmod 755 pm_dir || return 1
  vt_fails "denied" as1000 cat pm_root || return 1
  vt_fails "denied" as1000 sh -c 'echo x > pm_dir/f' || return 1
  vt_fails "denied" as1000 sh -c 'echo x >> pm_root' || return 1
  chmod 644 pm_root && vt_eq "readable once 644" secret "$(as1000 cat pm_root)"
}
t_chmod_chown_non_root() {
  vt_need vfs_ops || return 77
  mkdir cc && chmod 777 cc && as1000 sh -c 'echo x > cc/f' || return 1
  as1000 chmod 600 cc/f || { echo "the owner cannot chmod"; return 1; }
  vt_fails "not permitted" as1001 chmod 666 cc/f || return 1
  vt_fails "not permitted" as1000 chown 1001 cc/f || return 1
  vt_fails "not permitted" as1000 chgrp 1001 cc/f || return 1
  vt_eq mode 600 "$(stat -c %a cc/f)"
}
t_setgid_dir() {
  mkdir sg && chown 0:4242 sg && chmod 2775 sg || return 1
  : > sg/f && mkdir sg/d && vt_drop_caches || return 1
  vt_eq "file group" 4242 "$(stat -c %g sg/f)" && vt_eq "subdir group" 4242 "$(stat -c %g sg/d)" &&
    vt_eq "subdir mode" 2755 "$(stat -c %a sg/d)"
}
t_setgid_cleared() {
  # Creating a set-group-ID file in a set-group-ID directory of a group one is
  # not in: the bit is dropped (CVE-2022-0358).
  vt_need vfs_ops || return 77
  mkdir sgc && chown 0:4242 sgc && chmod 2777 sgc || return 1
  as1000 sh -c 'umask 0; vfs_ops create sgc/f 2777' || return 1
  vt_drop_caches || return 1
  vt_eq "group and mode" "4242 777" "$(stat -c '%g %a' sgc/f)"
}
t_suid_cleared_on_write() {
  vt_need vfs_ops || return 77
  echo x > sw && chmod 4777 sw || return 1
  as1000 sh -c 'echo more >> sw' || return 1
  vt_drop_caches && vt_eq "mode after a write by another user" 777 "$(stat -c %a sw)"
}
t_sticky() {
  vt_need vfs_ops || return 77
  mkdir st && chmod 1777 st && as1000 sh -c ': > st/mine' || return 1
  vt_fails "not permitted" as1001 rm -f st/mine || return 1
  as1000 rm st/mine
}
t_utimens() {
  vt_need vfs_ops || return 77
  : > ut && vfs_ops utimens ut 1000000000 123456789 1100000000 987654321 && vt_drop_caches || return 1
  vt_eq atime "2001-09-09 01:46:40.123456789" "$(stat -c %x ut | cut -c1-29)" &&
    vt_eq mtime "2004-11-09 11:33:20.987654321" "$(stat -c %y ut | cut -c1-29)" || return 1
  vfs_ops utimens ut 0 omit 0 now && vt_drop_caches || return 1
  vt_eq "atime kept with UTIME_OMIT" "2001-09-09" "$(stat -c %x ut | cut -c1-10)" &&
    [ "$(stat -c %Y ut)" -gt 1600000000 ]
}
t_holes() {
  vt_need vfs_ops || return 77
  dd if=/dev/zero of=ho bs=1M count=2 2>/dev/null && vfs_ops punch ho 0 1048576 || return 1
  vt_eq "first data" 1048576 "$(vfs_ops seek data ho 0)" && vt_eq "first hole" 0 "$(vfs_ops seek hole ho 0)" &&
    vt_eq size 2097152 "$(stat -c %s ho)"
}
t_copy_file_range() {
  vt_need vfs_ops || return 77
  dd if=/dev/urandom of=cp_src bs=64k count=4 2>/dev/null && vfs_ops copy cp_src cp_dst || return 1
  vt_drop_caches && cmp cp_src cp_dst
}
t_unlinked_open() {
  vt_need vfs_ops || return 77
  vt_eq "unlinked file" "still here nlink=0" "$(vfs_ops unlinked un)" && [ ! -e un ]
}
t_tmpfile() {
  vt_need vfs_ops || return 77
  mkdir tf && vfs_ops tmpfile tf && vt_eq content tmp "$(cat tf/tmpfile-linked)"
}
t_names() {
  n255=$(awk 'BEGIN { for (i = 0; i < 255; i++) printf "n" }')
  : > "$n255" || { echo "a 255-byte name was refused"; return 1; }
  if (: > "${"$"}{n255}x") 2>/dev/null; then echo "a 256-byte name was accepted"; return 1; fi
  long=$(awk 'BEGIN { for (i = 0; i < 4000; i++) printf "t" }')
  ln -s "$long" lsym && vt_drop_caches && back=$(readlink lsym) && vt_eq "symlink target length" 4000 "${"$"}{#back}"
}
t_umask_modes() {
  (umask 027 && : > um_f && mkdir um_d) && vt_drop_caches || return 1
  vt_eq "file mode" 640 "$(stat -c %a um_f)" && vt_eq "dir mode" 750 "$(stat -c %a um_d)"
}

check rename_noreplace t_rename_noreplace
check rename_exchange t_rename_exchange
check rename_whiteout t_rename_whiteout
check rename_dirs t_rename_dirs
check append_two_writers t_append_two_writers
check o_trunc t_o_trunc
check o_direct t_o_direct
check links t_links
check owner_of_new_files t_owner_of_new_files
check permissions t_permissions
check chmod_chown_non_root t_chmod_chown_non_root
check setgid_dir t_setgid_dir
check setgid_cleared t_setgid_cleared
check suid_cleared_on_write t_suid_cleared_on_write
check sticky t_sticky
check utimens t_utimens
check holes t_holes
check copy_file_range t_copy_file_range
check unlinked_open t_unlinked_open
check tmpfile t_tmpfile
check names t_names
check umask_modes t_umask_modes

expect_stat own/f uid gid
expect_stat own/d uid gid mode
expect_stat sg/f gid
expect_stat sg/d gid mode
expect_stat sgc/f gid mode
expect_stat cc/f mode uid
expect_stat sw mode
expect_stat ut mtime
expect_stat ho size
expect_sha256 cp_dst
expect_absent un
expect_stat um_f mode
exit 0
`;

/** The built-in workloads by name. */
export const BUILTIN_WORKLOADS: Readonly<Record<BuiltinWorkloadName, Workload>> = {
  smoke: {
    name: "smoke",
    description: "write, read back, mkdir, readdir, rename, unlink, 16 MiB of data",
    script: SMOKE,
  },
  posix: {
    name: "posix",
    description: "file I/O read back via the backend, renames, links, modes, owners, times, " +
      "1000-entry dir, fifo, xattrs (set/get/list/remove), statfs, 64 MiB checksum, fsync, " +
      "fallocate",
    script: POSIX,
  },
  locks: {
    name: "locks",
    description: "two processes contend on fcntl (exclusive, ranges, shared, waiting, owner " +
      "semantics) and flock locks; other I/O goes on while a lock waits",
    script: LOCKS,
  },
  "posix_more": {
    name: "posix_more",
    description: "rename2 flags, O_APPEND by two writers, O_TRUNC, O_DIRECT, links, owners and " +
      "permissions of other users, set-group-ID and sticky dirs, utimensat, holes, " +
      "copy_file_range, unlinked and O_TMPFILE files, name limits",
    script: POSIX_MORE,
  },
};

/** Whether `name` names a built-in workload. */
export function isBuiltinWorkload(name: string): name is BuiltinWorkloadName {
  return Object.hasOwn(BUILTIN_WORKLOADS, name);
}

/** Returns the built-in workload `name`; throws RangeError for an unknown name. */
export function builtinWorkload(name: string): Workload {
  if (!isBuiltinWorkload(name)) {
    throw new RangeError(
      `unknown workload '${name}' (built in: ${Object.keys(BUILTIN_WORKLOADS).join(", ")})`,
    );
  }
  return BUILTIN_WORKLOADS[name];
}

/** Loads a workload from a busybox sh script file; it is named after the file. */
export async function workloadFromFile(path: string): Promise<Workload> {
  const script = await Deno.readTextFile(path);
  const name = path.split("/").pop() ?? path;
  return { name, description: `script ${path}`, script };
}
