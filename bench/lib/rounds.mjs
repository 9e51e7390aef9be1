// Merges the rounds of one figure (see bench_hyperfine in common.sh): DIR holds one hyperfine JSON
// per round, each with one run of every command. Writes one result per command to OUT, in
// hyperfine's format (command, mean, stddev, median, user, system, min, max, times, exit_codes),
// and prints a summary line per command for the log.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, out] = process.argv.slice(2);
const rounds = readdirSync(dir)
  .filter(f => f.endsWith('.json'))
  .sort()
  .map(f => JSON.parse(readFileSync(join(dir, f), 'utf8')).results);
if (rounds.length === 0) throw new Error(`no rounds in ${dir}`);
const mean = xs => xs.reduce((a, b) => a + b, 0) / xs.length;
const results = rounds[0].map((first, i) => {
  const runs = rounds.map(r => {
    if (r[i]?.command !== first.command) throw new Error(`round without "${first.command}" at ${i}`);
    return r[i];
  });
  const times = runs.flatMap(r => r.times);
  const sorted = [...times].sort((a, b) => a - b);
  const m = mean(times);
  const mid = sorted.length >> 1;
  return {
    command: first.command,
    mean: m,
    // The sample standard deviation, as hyperfine gives it; none for a single run.
    stddev:
      times.length > 1 ? Math.sqrt(times.reduce((a, t) => a + (t - m) ** 2, 0) / (times.length - 1)) : null,
    median: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
    user: mean(runs.map(r => r.user)),
    system: mean(runs.map(r => r.system)),
    min: sorted[0],
    max: sorted.at(-1),
    times,
    exit_codes: runs.flatMap(r => r.exit_codes)
  };
});
writeFileSync(out, `${JSON.stringify({ results }, null, 2)}\n`);
for (const r of results)
  console.log(
    `${r.command}: ${r.mean.toFixed(3)} s ± ${(r.stddev ?? 0).toFixed(3)} (${r.times.length} runs, taking turns)`
  );
