#!/usr/bin/env bash
# Fetches the KV-cache evaluation text (docs/kv-cache.md): the King James Version of the
# Bible (public domain), as shipped by Debian's bible-kjv-text package and printed by the
# bible-kjv package's own reader. We take Genesis, Exodus and Leviticus, drop chapter
# headings and verse numbers and join verses into one paragraph per chapter. No passage is
# chosen by hand: segments are cut from the start of this file by `strata perplexity`.
# Usage: tools/fetch_kv_eval_text.sh [OUT]   (default models/kv-eval-kjv.txt)
set -euo pipefail
OUT=${1:-models/kv-eval-kjv.txt}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [[ -x /usr/bin/bible && -f /usr/lib/bible.data ]]; then   # installed by `make deps`
  BIBLE=/usr/bin/bible; DATA=/usr/lib
else                                                         # unpack without installing
  (cd "$TMP" && apt-get download bible-kjv bible-kjv-text >/dev/null 2>&1) ||
    { echo "apt-get download bible-kjv bible-kjv-text failed (needs Debian apt sources; 'make deps' installs them)"; exit 1; }
  for f in "$TMP"/*.deb; do dpkg-deb -x "$f" "$TMP/root"; done
  BIBLE=$TMP/root/usr/bin/bible; DATA=$TMP/root/usr/lib
fi
mkdir -p "$(dirname "$OUT")"
"$BIBLE" -p "$DATA" "gen1:1-50:26" "exo1:1-40:38" "lev1:1-27:34" |
  python3 -c '
import re, sys
paras, cur = [], []
for line in sys.stdin:
    line = line.rstrip("\n")
    if re.match(r"^\S.* \d+$", line):          # chapter heading, e.g. "Genesis 1"
        if cur: paras.append(" ".join(cur)); cur = []
        continue
    line = re.sub(r"^\s*\d+ ", "", line).strip()  # verse number
    if line: cur.append(line)
if cur: paras.append(" ".join(cur))
sys.stdout.write("\n\n".join(paras) + "\n")
' > "$OUT"
echo "wrote $OUT ($(wc -w < "$OUT") words, sha256 $(sha256sum "$OUT" | cut -c1-16))"
