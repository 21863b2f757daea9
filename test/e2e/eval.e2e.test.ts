import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBrain, tempHome } from './brain-process.js';

/** A tiny LoCoMo-format conversation written by the test (the dev file is never copied into the project). */
function conversation() {
  return [
    {
      sample_id: 'tiny',
      conversation: {
        speaker_a: 'Ana',
        speaker_b: 'Ben',
        session_1_date_time: '1:00 pm on 2 May, 2023',
        session_1: [
          { speaker: 'Ana', dia_id: 'D1:1', text: 'I adopted a greyhound named Comet last week.' },
          { speaker: 'Ben', dia_id: 'D1:2', text: 'That is wonderful, how is he settling in?' },
          { speaker: 'Ana', dia_id: 'D1:3', text: 'He sleeps all day on the sofa.' },
        ],
        session_2_date_time: '3:00 pm on 9 May, 2023',
        session_2: [
          { speaker: 'Ben', dia_id: 'D2:1', text: 'I started learning the cello in April.' },
          {
            speaker: 'Ana',
            dia_id: 'D2:2',
            text: 'Which piece are you practising?',
            blip_caption: 'a photo of sheet music',
          },
        ],
      },
      qa: [
        { question: 'What is the name of the greyhound Ana adopted?', evidence: ['D1:1'], category: 4 },
        { question: 'Which instrument did Ben start learning?', evidence: ['D2:1'], category: 4 },
        { question: 'Does Ben own a greyhound?', evidence: ['D1:1'], category: 5 },
        { question: 'A question whose evidence is unknown', evidence: ['D9:9'], category: 1 },
      ],
    },
  ];
}

const home = tempHome();
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

describe('brain eval', () => {
  it('scores turn and session recall, MRR and latency per category, as JSON and as a table', async () => {
    const data = path.join(home, 'tiny-locomo.json');
    fs.writeFileSync(data, JSON.stringify(conversation()));
    const json = await runBrain(['eval', '--data', data, '--k', '1,5', '--json'], { BRAIN_HOME: home });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({
      embedder: 'use-lite-static',
      conversations: 1,
      turns: 5,
      questions: 3,
      skipped: 1,
      ks: [1, 5],
    });
    // Every question's evidence holds the question's rare words: each is found first.
    expect(report.overall.turnRecall['1']).toBe(1);
    expect(report.overall.mrr).toBe(1);
    expect(report.byCategory['5'].questions).toBe(1);
    expect(report.latency.recallMs.p50).toBeGreaterThan(0);
    expect(fs.readdirSync(home).filter((f) => f.startsWith('data'))).toEqual([]); // the user's store is untouched

    const table = await runBrain(['eval', '--data', data, '--embedder', 'none'], { BRAIN_HOME: home });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/overall \(1-4\)\s+2\s+1\.000/);
    expect(table.stdout).toContain('text-only (no-embedder) 3');
  });

  it('refuses a missing file, bad JSON, a malformed conversation and bad --k, naming the problem', async () => {
    const bad = path.join(home, 'bad.json');
    fs.writeFileSync(bad, '{not json');
    const cases: [string[], RegExp][] = [
      [['--data', path.join(home, 'missing.json')], /data: cannot read .*missing\.json \(ENOENT\)/],
      [['--data', bad], /data: .*bad\.json is not JSON/],
      [['--data', bad, '--k', '0,5'], /k: must be integers from 1 to 100/],
    ];
    fs.writeFileSync(
      path.join(home, 'shape.json'),
      JSON.stringify([{ conversation: {}, qa: [{ question: 'q' }] }]),
    );
    cases.push([['--data', path.join(home, 'shape.json')], /0\.qa\.0\.category/]);
    for (const [args, message] of cases) {
      const run = await runBrain(['eval', ...args], { BRAIN_HOME: home });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(message);
    }
  });
});

describe('brain status', () => {
  it('shows the embedder, its model and the embedding backlog', async () => {
    await runBrain(['remember', 'status check memory'], { BRAIN_HOME: home });
    const run = await runBrain(['status', '--json'], { BRAIN_HOME: home });
    expect(run.code).toBe(0);
    const status = JSON.parse(run.stdout);
    expect(status.memories).toBe(1);
    expect(status.embeddings).toMatchObject({ provider: 'use-lite-static', dimensions: 256, problem: null });
    expect(status.embeddings.queue.backlog).toBe(0);
    expect(status.embeddings.model).toMatch(/^use-lite-static-v1-256/);
  });
});
