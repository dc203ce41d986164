#!/usr/bin/env bash
# Question 1 of the lecture's exercises from a shell: the reference's gradient and table, then a
# class's answers (a CSV, as a spreadsheet exports it) graded against it. Run from a clone:
#
#   npm ci && npm run build
#   examples/cli/grade-class.sh                      # computes in-process
#   ADJOINT_URL=http://localhost:3000 examples/cli/grade-class.sh   # or against a server
#
# The grading step exits 1 when a student lost marks, as `adjoint grade` does.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The built command; $ADJOINT_CLI may name another way to run it (the tests: node --import tsx src/cli/main.ts).
adjoint() { ${ADJOINT_CLI:-node dist/src/cli/main.js} "$@"; }

reference='a = x; b = x; a * b'
adjoint grad "$reference" --at x=1.5
adjoint trace "$reference" --at x=1.5 --mode forward

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The reference with a known mistake and its feedback: POST /grade's request without submissions.
cat > "$work/question1.json" <<'JSON'
{
  "reference": {
    "expr": "a = x; b = x; a * b",
    "feedback": [{ "expr": "x", "message": "Only one factor was differentiated: the product rule has two terms." }]
  },
  "at": { "x": 1.5 }
}
JSON
cat > "$work/answers.csv" <<'CSV'
id,derivative.x,value
ada,"x + x",2.25
ben,x,2.25
cy,"2*x +",2.24
CSV
# ada: right; ben: the known mistake; cy: a formula that does not parse (not gradable, not wrong)
# and a value within PrairieLearn's 1% of 2.25.
adjoint grade "@$work/question1.json" "$work/answers.csv"
