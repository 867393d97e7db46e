#!/bin/sh
# End to end for `t3d index`, `search`, `similar` and `bench-search` on 8 small phantoms with
# reports (report.txt beside the series folder, and one through --reports CSV):
#   - kill -9 during indexing leaves a consistent index (integrity_check, foreign keys, one
#     analysis + embedding per series); a rerun finishes the rest and skips what is known;
#   - two indexers on one database at once lose nothing;
#   - the database is mode 0600, the XDG default path is used without --index;
#   - a search for a finding returns the phantoms whose reports have it first; FTS/SQL syntax in
#     the text is harmless; a database from a newer t3d is refused with a message;
#   - bench-search runs at tiny n with recall 1 for the exact mode.
set -u
BUILD=${T3D_BUILDDIR:-.}
PY=${T3D_PYTHON:-python3}
T3D="$BUILD/t3d"
MODEL="$BUILD/models/t3d-tiny-init.safetensors"
export T3D_MODEL="$MODEL"
if ! "$PY" -c 'import sqlite3, json' >/dev/null 2>&1; then
  echo "SKIP: no python3 with sqlite3 to inspect the index"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t3d-index-cli.XXXXXX") || exit 1
fail() { echo "FAIL: $*"; echo "kept $tmp"; exit 1; }
N=8
i=1
while [ $i -le $N ]; do
  "$T3D" phantom-write "$tmp/cases/case-$i/dicom" --seed $i --size 48,48,16 >/dev/null || fail "phantom-write $i"
  i=$((i + 1))
done
echo "Right lower lobe nodule, 9 mm. Small pleural effusion." >"$tmp/cases/case-1/report.txt"
echo "Simple liver cyst. Lungs clear." >"$tmp/cases/case-2/report.txt"
echo "Moderate pleural effusion on the left." >"$tmp/cases/case-3/report.txt"
echo "No acute findings." >"$tmp/cases/case-4/dicom/report.txt" # in the series folder itself
uid8=$("$T3D" info "$tmp/cases/case-8/dicom" | sed -n 3p | awk '{print $3}')
[ -n "$uid8" ] || fail "no series UID for case 8"
printf 'SeriesInstanceUID,report\n%s,Superseded draft quokka\n%s,"Zebra-stripe artefact, ""marked"", second line\nof the report."\n' "$uid8" "$uid8" \
  >"$tmp/reports.csv"

# sql DB QUERY: prints the first column of each row
sql() { "$PY" -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for r in c.execute(sys.argv[2]): print(r[0])' "$1" "$2"; }
consistent() { # DB: integrity, foreign keys, one analysis and embedding per series
  [ "$(sql "$1" 'PRAGMA integrity_check')" = ok ] || fail "$1: integrity_check: $(sql "$1" 'PRAGMA integrity_check')"
  [ -z "$(sql "$1" 'PRAGMA foreign_key_check')" ] || fail "$1: foreign_key_check not empty"
  s=$(sql "$1" 'SELECT count(*) FROM series')
  a=$(sql "$1" 'SELECT count(*) FROM analyses')
  e=$(sql "$1" 'SELECT count(*) FROM embeddings')
  [ "$s" = "$a" ] && [ "$a" = "$e" ] || fail "$1: series $s, analyses $a, embeddings $e differ"
}

# 1. kill -9 after the first committed series, then rerun.
db="$tmp/index.db"
"$T3D" index "$tmp/cases" --index "$db" --reports "$tmp/reports.csv" --threads 1 >/dev/null 2>"$tmp/run1.err" &
pid=$!
"$PY" - "$db" "$pid" <<'PYEOF' || fail "could not kill the indexer after its first commit"
import os, sqlite3, sys, time
db, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        n = sqlite3.connect(db, timeout=5).execute("SELECT count(*) FROM analyses").fetchone()[0]
    except sqlite3.Error:
        n = 0
    if n >= 1:
        os.kill(pid, 9)
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
PYEOF
wait $pid
[ $? -eq 137 ] || fail "the indexer was not killed by SIGKILL (finished first?)"
first=$(sql "$db" 'SELECT count(*) FROM analyses')
[ "$first" -ge 1 ] && [ "$first" -lt $N ] || fail "after kill -9: $first analyses, want 1..$((N - 1))"
consistent "$db"
"$T3D" index "$tmp/cases" --index "$db" --reports "$tmp/reports.csv" >/dev/null 2>"$tmp/run2.err" \
  || fail "rerun after kill -9 failed: $(cat "$tmp/run2.err")"
grep -q "$((N - first)) analysed, $first known, 0 failed" "$tmp/run2.err" \
  || fail "rerun did not finish the rest: $(tail -1 "$tmp/run2.err") (had $first)"
consistent "$db"
[ "$(sql "$db" 'SELECT count(*) FROM series')" = $N ] || fail "series after rerun"
[ "$(sql "$db" 'SELECT count(*) FROM reports')" = 5 ] || fail "reports: $(sql "$db" 'SELECT count(*) FROM reports'), want 5"
"$T3D" index "$tmp/cases" --index "$db" --reports "$tmp/reports.csv" >/dev/null 2>"$tmp/run3.err" || fail "third run"
grep -q "0 analysed, $N known" "$tmp/run3.err" || fail "third run re-analysed: $(tail -1 "$tmp/run3.err")"
grep -q "ETA" "$tmp/run3.err" || fail "no progress bar"
[ "$(stat -c %a "$db")" = 600 ] || fail "index mode $(stat -c %a "$db"), want 600"
[ "$(sql "$db" 'SELECT geometry_note FROM analyses LIMIT 1')" = "" ] || fail "geometry_note of an untilted phantom"

# 2. Two indexers on one new database at once, overlapping folders.
db2="$tmp/two.db"
"$T3D" index "$tmp/cases/case-1" "$tmp/cases/case-2" "$tmp/cases/case-3" "$tmp/cases/case-4" "$tmp/cases/case-5" \
  --index "$db2" --threads 1 >/dev/null 2>"$tmp/a.err" &
pa=$!
"$T3D" index "$tmp/cases/case-8" "$tmp/cases/case-7" "$tmp/cases/case-6" "$tmp/cases/case-5" "$tmp/cases/case-4" \
  --index "$db2" --threads 1 >/dev/null 2>"$tmp/b.err" &
pb=$!
wait $pa || fail "indexer A failed: $(cat "$tmp/a.err")"
wait $pb || fail "indexer B failed: $(cat "$tmp/b.err")"
consistent "$db2"
[ "$(sql "$db2" 'SELECT count(*) FROM series')" = $N ] || fail "concurrent: $(sql "$db2" 'SELECT count(*) FROM series') series"

# 3. Default path per XDG, folder 0700, file 0600.
# With --masks the label volume is written and its location stored.
XDG_DATA_HOME="$tmp/xdg" "$T3D" index "$tmp/cases/case-2" --masks "$tmp/masks" >/dev/null 2>&1 \
  || fail "index to the XDG default"
[ "$(stat -c %a "$tmp/xdg/t3d/index.db")" = 600 ] || fail "XDG index mode"
[ "$(stat -c %a "$tmp/xdg/t3d")" = 700 ] || fail "XDG folder mode $(stat -c %a "$tmp/xdg/t3d")"
mask=$(sql "$tmp/xdg/t3d/index.db" "SELECT path FROM mask_locations WHERE format = 'nifti'")
[ -s "$mask" ] && [ "$(dirname "$mask")" = "$tmp/masks" ] || fail "mask location '$mask' not written"
[ "$(stat -c %a "$tmp/masks")" = 700 ] || fail "mask folder mode $(stat -c %a "$tmp/masks")"

# 4. Search: the phantoms whose reports say "pleural effusion" come first.
"$T3D" search "pleural effusion" --index "$db" --json >"$tmp/s.json" || fail "search"
"$PY" - "$tmp/s.json" <<'PYEOF' || fail "search ranking: $(cat "$tmp/s.json")"
import json, sys
hits = json.load(open(sys.argv[1]))
top = sorted(h["path"].split("/")[-2] for h in hits[:2])
assert top == ["case-1", "case-3"], top
assert all(h["text_rank"] >= 1 for h in hits[:2]) and hits[0]["cosine"] is not None
assert len(hits) == 8, len(hits)
PYEOF
"$T3D" search "zebra stripe" --index "$db" --json --k 1 >"$tmp/z.json" || fail "search (CSV report)"
grep -q "$uid8" "$tmp/z.json" || fail "the --reports CSV text was not found: $(cat "$tmp/z.json")"
[ "$(sql "$db" "SELECT text FROM reports WHERE source = 'csv'")" = 'Zebra-stripe artefact, "marked", second line
of the report.' ] || fail "CSV text stored as: $(sql "$db" "SELECT text FROM reports WHERE source = 'csv'")"
"$T3D" search quokka --index "$db" --json >"$tmp/q.json" || fail "search quokka"
grep -q '"text_rank": 1' "$tmp/q.json" && fail "a superseded CSV row (same key earlier in the file) was stored"
for text in '"foo' 'NEAR(' "x'); DROP TABLE reports; --" 'effusion" OR "' '*' ''; do
  "$T3D" search "$text" --index "$db" >/dev/null 2>"$tmp/e.err" || fail "search [$text]: $(cat "$tmp/e.err")"
done
[ "$(sql "$db" 'SELECT count(*) FROM reports')" = 5 ] || fail "reports changed by a search"
"$T3D" search effusion --index "$db" --since 2999-01-01 | grep -q "No matching cases" || fail "--since in the future"
"$T3D" search effusion --index "$db" --since "2020' OR 1=1" >/dev/null 2>&1 && fail "a bad --since was accepted"
"$T3D" search effusion --index "$db" --mode int8 --k 3 >/dev/null || fail "search --mode int8"

# 5. similar, by folder and by UID: the query case itself is left out.
"$T3D" similar "$tmp/cases/case-1/dicom" --index "$db" --json >"$tmp/sim.json" || fail "similar DIR"
"$PY" -c 'import json, sys
h = json.load(open(sys.argv[1]))
assert len(h) == 7 and all("case-1/" not in x["path"] for x in h), h' "$tmp/sim.json" || fail "similar DIR output"
"$T3D" similar "$uid8" --index "$db" --k 2 >"$tmp/sim.txt" || fail "similar UID"
grep -q "$uid8" "$tmp/sim.txt" && fail "similar listed the query series"
"$T3D" similar 1.2.3.4.5 --index "$db" >/dev/null 2>&1 && fail "similar of an unknown UID succeeded"

# 6. A database from a newer t3d is refused with a message and left alone.
cp "$db" "$tmp/newer.db"
sql "$tmp/newer.db" 'PRAGMA user_version = 99' >/dev/null
"$T3D" search effusion --index "$tmp/newer.db" >/dev/null 2>"$tmp/n.err" && fail "newer schema accepted"
grep -q "newer t3d" "$tmp/n.err" || fail "no message for a newer schema: $(cat "$tmp/n.err")"
[ "$(sql "$tmp/newer.db" 'PRAGMA user_version')" = 99 ] || fail "newer database was changed"

# 7. bench-search smoke (FAISS beside it when installed).
"$T3D" bench-search --n 3000 --dim 64 --queries 30 --ref-queries 30 --dir "$tmp" >"$tmp/bench.txt" 2>&1 \
  || fail "bench-search: $(cat "$tmp/bench.txt")"
grep -q "t3d fp32 (exact) .* 1.0000 " "$tmp/bench.txt" || fail "exact recall is not 1: $(cat "$tmp/bench.txt")"
grep -q "t3d int8+rescore" "$tmp/bench.txt" && grep -q "faiss IndexFlatIP" "$tmp/bench.txt" \
  || fail "bench-search table incomplete: $(cat "$tmp/bench.txt")"
cat "$tmp/bench.txt"
rm -rf "$tmp"
echo "PASS"
