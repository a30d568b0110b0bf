# Database and search-node URLs without leaking their passwords. Sourced by the other scripts:
#
#   . scripts/url.sh
#   redact_url "postgres://app:s3cret@db:5432/app"         # postgres://app:****@db:5432/app
#   url_without_password "postgres://app:s3cret@db/app"    # postgres://app@db/app
#   url_password "postgres://app:s%40cret@db/app"          # s@cret (percent-decoded)
#   with_url_password URL psql "$(url_without_password URL)" ...
#
# Print only redact_url's form; pass a password to programs through their environment
# (PGPASSWORD for libpq), never on a command line, where `ps` shows it to every user.
# A password may sit in the user info (user:password@host) or in a `password=` query parameter.

# Splits $1 into _url_head (scheme://user), _url_pass (raw, still percent-encoded; empty when
# none), _url_has_pass (1 or empty), _url_host (host:port), _url_tail (path, query, fragment).
_url_split() {
  local url="$1" after authority userinfo
  _url_head="" _url_pass="" _url_has_pass="" _url_host="" _url_tail="$url"
  case "$url" in
    *://*) ;;
    *) return 0 ;;
  esac
  after="${url#*://}"
  authority="${after%%[/?#]*}"
  _url_tail="${after:${#authority}}"
  case "$authority" in
    *@*)
      userinfo="${authority%@*}"
      _url_host="@${authority##*@}"
      case "$userinfo" in
        *:*)
          _url_head="${url%%://*}://${userinfo%%:*}"
          _url_pass="${userinfo#*:}"
          _url_has_pass=1
          ;;
        *) _url_head="${url%%://*}://$userinfo" ;;
      esac
      ;;
    *)
      _url_head="${url%%://*}://"
      _url_host="$authority"
      ;;
  esac
}

# $1 with any password replaced by ****: safe to print.
# libpq's key=value form (`host=db password=s3cret`, a value quoted as 'it\'s'), which psql
# takes where it takes a URL: the password pair, as an extended regular expression.
_kv_password='(^|[[:space:]])password[[:space:]]*=[[:space:]]*('"'"'([^'"'"'\\]|\\.)*'"'"'|[^[:space:]'"'"']*)'

# Any pair whose key ends in `password` (sslpassword too), the key in group 2: what redact_url
# masks.
_kv_any_password='(^|[[:space:]])([[:alnum:]_]*password)[[:space:]]*=[[:space:]]*('"'"'([^'"'"'\\]|\\.)*'"'"'|[^[:space:]'"'"']*)'

_is_kv() {
  case "$1" in
    *://*) return 1 ;;
    *) return 0 ;;
  esac
}

redact_url() {
  if _is_kv "$1"; then
    if _is_bare_userinfo "$1"; then
      # user:password@host... without a scheme: everything between the first ':' and the
      # last '@' is the password.
      local before="${1%@*}"
      printf '%s:****@%s\n' "${before%%:*}" "${1##*@}"
      return
    fi
    printf '%s\n' "$1" | sed -E "s/$_kv_any_password/\\1\\2=****/g"
    return
  fi
  if _redact_raw_userinfo "$1"; then
    return
  fi
  _url_split "$1"
  local pass=""
  [ -n "$_url_has_pass" ] && pass=":****"
  printf '%s%s%s%s\n' "$_url_head" "$pass" "$_url_host" \
    "$(printf '%s' "$_url_tail" | sed -E 's/([?&][[:alnum:]_]*password=)[^&#]*/\1****/g')"
}

# Whether $1 (no scheme) is `user:password@host...`, not libpq's key=value form: it does not
# start with a key and an '=', and a ':' comes before its last '@'.
_is_bare_userinfo() {
  [[ ! "$1" =~ ^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*= ]] || return 1
  [[ "$1" == *@* ]] || return 1
  local before="${1%@*}"
  [[ "$before" == *:* ]]
}

# Prints $1 masked and succeeds when its password holds a '/', '?' or '#' written as it is
# (`scheme://user:pa/ss@host`): the authority before the first of them has no '@', what
# follows its ':' is not a port, and an '@' comes later.
_redact_raw_userinfo() {
  local scheme="${1%%://*}" after="${1#*://}" authority
  authority="${after%%[/?#]*}"
  case "$authority" in
    *@* | \[* | "") return 1 ;;
    *:*) ;;
    *) return 1 ;;
  esac
  local port="${authority#*:}"
  [[ -n "$port" && "$port" =~ ^[0-9]+$ ]] && return 1
  [[ "${after:${#authority}}" == *@* ]] || return 1
  local user="${authority%%:*}" rest="${after#*@}"
  printf '%s://%s:****@%s\n' "$scheme" "$user" \
    "$(printf '%s' "$rest" | sed -E 's/([?&][[:alnum:]_]*password=)[^&#]*/\1****/g')"
}

# $1 without its password (user info and every parameter named like a password: libpq has no
# variable for sslpassword, so it is not passed on): safe to put on a command line.
url_without_password() {
  if _is_kv "$1"; then
    printf '%s\n' "$1" | sed -E "s/$_kv_any_password[[:space:]]*/\\1/g; s/[[:space:]]+\$//"
    return
  fi
  _url_split "$1"
  printf '%s%s%s\n' "$_url_head" "$_url_host" \
    "$(printf '%s' "$_url_tail" | sed -E 's/([?&])[[:alnum:]_]*password=[^&#]*&?/\1/g; s/[?&](#|$)/\1/')"
}

# The password in $1, percent-decoded (empty when there is none).
url_password() {
  local pass
  if _is_kv "$1"; then
    pass=$(printf '%s' "$1" | sed -nE "s/.*$_kv_password.*/\\2/p")
    case "$pass" in
      \'*) pass="${pass:1:${#pass}-2}" ;;
    esac
    printf '%s' "$pass" | sed -E 's/\\(.)/\1/g'
    return
  fi
  _url_split "$1"
  if [ -n "$_url_has_pass" ]; then
    pass="$_url_pass"
  else
    pass=$(printf '%s' "$_url_tail" | sed -nE 's/.*[?&]password=([^&#]*).*/\1/p')
  fi
  pass="${pass//\\/\\\\}"
  printf '%b' "${pass//%/\\x}"
}

# Runs "${@:2}" with PGPASSWORD set to the password of URL $1 (when it has one).
with_url_password() {
  local password
  password=$(url_password "$1")
  shift
  if [ -n "$password" ]; then
    PGPASSWORD="$password" "$@"
  else
    "$@"
  fi
}

# curl on URL $1 (credentials included) with options "${@:2}", the URL passed on stdin as a
# curl config line rather than on the command line.
curl_url() {
  local url="$1"
  shift
  url="${url//\\/\\\\}"
  printf 'url = "%s"\n' "${url//\"/\\\"}" | curl --config - "$@"
}
