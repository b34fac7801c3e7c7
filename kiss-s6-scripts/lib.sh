# shellcheck shell=sh disable=SC2034
# (SC2034: helpers return results in variables: $value, $trimmed, $mopts.)
# lib.sh: shared by the kiss-s6 service helpers (sourced, never run). POSIX sh; works
# under busybox sh, dash and oksh, with busybox or toybox applets (no awk: toybox has none).

# Our own binary, by absolute path: busybox sh runs its applets before PATH, and
# busybox-static has no `mountpoint`. KISS_S6 exists only so tests can point at a build.
KISS_S6=${KISS_S6:-/usr/bin/kiss-s6}

# Configuration files of the helpers: /etc/kiss-s6/<name>.conf.
CONF_DIR=/etc/kiss-s6

# say MESSAGE: one line on stderr, which s6-rc hands to rc.init's catch-all logger.
say() { printf 'kiss-s6: %s: %s\n' "${RC_NAME:-${0##*/}}" "$*" >&2; }

# shout MESSAGE: also on the console, for what a person at the machine must read.
shout() {
    say "$@"
    printf 'kiss-s6: %s: %s\n' "${RC_NAME:-${0##*/}}" "$*" > /dev/console 2>/dev/null
}

# have PROGRAM: is it installed (a busybox applet counts under busybox sh)?
have() { command -v "$1" >/dev/null 2>&1; }

# mp DIR: is DIR a mount point?
mp() { "$KISS_S6" mountpoint -q "$1" 2>/dev/null; }

# trim WORDS: $trimmed = the argument without leading and trailing blanks.
trim() {
    trimmed=$1
    while :; do
        case $trimmed in
        [[:space:]]*) trimmed=${trimmed#?} ;;
        *[[:space:]]) trimmed=${trimmed%?} ;;
        *) return 0 ;;
        esac
    done
}

# conf NAME KEY DEFAULT: $value = KEY from /etc/kiss-s6/NAME.conf (`key = value` lines,
# `#` comments, the same syntax as init.conf), DEFAULT when absent or empty.
conf() { conf_file "$CONF_DIR/$1.conf" "$2" "$3"; }

# conf_file FILE KEY DEFAULT: the same for any such file (/etc/s6.conf: s6-frontend's).
conf_file() {
    value=$3
    [ -r "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        case $line in *=*) ;; *) continue ;; esac
        trim "${line%%=*}"
        [ "$trimmed" = "$2" ] || continue
        trim "${line#*=}"
        [ -n "$trimmed" ] && value=$trimmed
    done < "$1"
    return 0
}

# fstab_each FUNCTION: call FUNCTION SPEC DIR TYPE OPTIONS PASS LINENO for every entry
# of /etc/fstab (comments and blank lines skipped). Fields are blank-separated; the
# octal escape \040 for a space in a path is decoded.
fstab_each() {
    [ -r /etc/fstab ] || return 0
    _n=0
    while read -r _spec _dir _type _opts _dump _pass _rest || [ -n "$_spec" ]; do
        _n=$((_n + 1))
        case $_spec in ''|'#'*) continue ;; esac
        "$1" "$(unescape "$_spec")" "$(unescape "$_dir")" "${_type:-auto}" "${_opts:-defaults}" "${_pass:-0}" "$_n"
    done < /etc/fstab
}

unescape() {
    _s=$1
    _out=''
    while :; do
        case $_s in
        *'\040'*) _out=$_out${_s%%\\040*}' '; _s=${_s#*\\040} ;;
        *) printf '%s' "$_out$_s"; return 0 ;;
        esac
    done
}

# has_opt OPTIONS OPT: is OPT one of the comma-separated OPTIONS?
has_opt() { case ,$1, in *,"$2",*) return 0 ;; esac; return 1; }

# is_netfs TYPE: a network filesystem (mounted by netmount, after the network).
is_netfs() {
    case $1 in
    nfs|nfs4|cifs|smbfs|smb3|ncpfs|sshfs|fuse.sshfs|ceph|glusterfs|9p|afs|coda|davfs|fuse.davfs) return 0 ;;
    esac
    return 1
}

# is_pseudo TYPE: filesystems the virtual bundle or stage 1 own, never checked or
# mounted from fstab.
is_pseudo() {
    case $1 in
    proc|sysfs|devtmpfs|devpts|cgroup|cgroup2|securityfs|debugfs|tracefs|efivarfs|mqueue|hugetlbfs|bpf|configfs|fusectl|pstore|binfmt_misc) return 0 ;;
    esac
    return 1
}

# mount_opts OPTIONS: $mopts = OPTIONS without the fstab-only words the kernel would
# refuse (toybox mount passes them through to mount(2)); empty means defaults.
mount_opts() {
    mopts=''
    _rest=$1,
    while [ -n "$_rest" ]; do
        _o=${_rest%%,*} _rest=${_rest#*,}
        case $_o in
        ''|defaults|auto|noauto|nofail|_netdev|user|users|nouser|owner|group|comment=*|x-*) ;;
        *) mopts=${mopts:+$mopts,}$_o ;;
        esac
    done
}

# root_is_rw: is / mounted read-write (the last / line of /proc/mounts wins)?
root_is_rw() {
    _ro=
    while read -r _ _d _ _o _; do
        [ "$_d" = / ] && _ro=$_o
    done < /proc/mounts
    case ,$_ro, in *,rw,*) return 0 ;; esac
    return 1
}

# idle: nothing to run, but a longrun must not exit (it would be restarted every second).
# `kiss-s6 pause` is one small process that its down signal ends (s6-pause is in
# s6-portable-utils, which we do not require).
idle() {
    exec /usr/bin/kiss-s6 pause
}
