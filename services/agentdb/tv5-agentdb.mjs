#!/usr/bin/env node
// The project's bridge to AgentDB 1.6.1: everything here runs AgentDB's own code (its sql.js database
// layer, LearningSystem, ReflexionMemory), so what it reports is what AgentDB itself reads.
//
//   node tv5-agentdb.mjs create <db>                  new database with AgentDB's schema (CLI init + LearningSystem)
//   node tv5-agentdb.mjs stats <db> [--session ID]    counts as AgentDB reads them (JSON on stdout)
//   node tv5-agentdb.mjs search <db> <f32 file> <dim> [k]
//                                                     ReflexionMemory.retrieveRelevant for each query vector in the file
//   node tv5-agentdb.mjs hold <db>                    open the file, wait for a line on stdin, then read it
//                                                     through the descriptor opened first (atomic-replace test)
//   node tv5-agentdb.mjs feedback <db> <steps.json>   baseline: one LearningSystem session + submitFeedback per step
//
// AgentDB logs to stdout; this script moves that to stderr so stdout carries exactly one JSON document.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'node_modules', 'agentdb', 'dist');
const log = (...parts) => process.stderr.write(parts.map(String).join(' ') + '\n');
console.log = log;
console.info = log;
console.warn = log;

async function agentdb() {
  const manifest = path.join(here, 'node_modules', 'agentdb', 'package.json');
  if (!fs.existsSync(manifest)) {
    throw new Error(`the npm package agentdb is not installed in ${here}: run ` +
      `'npm ci --ignore-scripts --prefix services/agentdb' (or scripts/setup)`);
  }
  const { createDatabase } = await import(path.join(dist, 'db-fallback.js'));
  const { LearningSystem } = await import(path.join(dist, 'controllers', 'LearningSystem.js'));
  const { ReflexionMemory } = await import(path.join(dist, 'controllers', 'ReflexionMemory.js'));
  const version = JSON.parse(fs.readFileSync(manifest, 'utf8')).version;
  return { createDatabase, LearningSystem, ReflexionMemory, version };
}

// AgentDB replaces a file it cannot read with an empty database (and would save that over it):
// refuse to open anything that is not there, so a reader never mistakes a missing file for an empty one.
function requireFile(db) {
  if (!fs.existsSync(db)) throw new Error(`no database file at ${db}`);
  return fs.statSync(db).size;
}

// An embedder that answers every query with one given vector: ReflexionMemory's search then ranks the
// stored episode embeddings by cosine similarity to that vector, with AgentDB's own code.
const fixedEmbedder = (vector) => ({ embed: async () => vector, initialize: async () => {} });
const noEmbedder = { embed: async () => new Float32Array(0), initialize: async () => {} };

async function create(db) {
  if (fs.existsSync(db)) throw new Error(`refusing to create over an existing file: ${db}`);
  const lib = await agentdb();
  const handle = await lib.createDatabase(db);
  for (const schema of ['schema.sql', 'frontier-schema.sql']) {  // what `agentdb init` loads
    handle.exec(fs.readFileSync(path.join(dist, 'schemas', schema), 'utf8'));
  }
  new lib.LearningSystem(handle, noEmbedder);  // its constructor adds its own tables
  handle.save();
  const tables = handle.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
  return { created: db, agentdb_version: lib.version, tables: tables.map((t) => t.name) };
}

function count(handle, sql, ...params) {
  return handle.prepare(sql).get(...params).n;
}

async function stats(db, options) {
  const bytes = requireFile(db);
  const lib = await agentdb();
  const handle = await lib.createDatabase(db);
  const learning = new lib.LearningSystem(handle, noEmbedder);
  const byType = handle.prepare(
    'SELECT session_type AS type, COUNT(*) AS n FROM learning_sessions GROUP BY session_type ORDER BY type').all();
  const dims = handle.prepare(
    'SELECT LENGTH(embedding) / 4 AS dim, COUNT(*) AS n FROM episode_embeddings GROUP BY dim ORDER BY dim').all();
  const result = {
    agentdb_version: lib.version,
    file_bytes: bytes,
    sessions: count(handle, 'SELECT COUNT(*) AS n FROM learning_sessions'),
    session_users: count(handle, 'SELECT COUNT(DISTINCT user_id) AS n FROM learning_sessions'),
    sessions_by_type: Object.fromEntries(byType.map((r) => [r.type, r.n])),
    experiences: count(handle, 'SELECT COUNT(*) AS n FROM learning_experiences'),
    experiences_without_session: count(handle,
      'SELECT COUNT(*) AS n FROM learning_experiences WHERE session_id NOT IN (SELECT id FROM learning_sessions)'),
    episodes: count(handle, 'SELECT COUNT(*) AS n FROM episodes'),
    embeddings: count(handle, 'SELECT COUNT(*) AS n FROM episode_embeddings'),
    embedding_dims: Object.fromEntries(dims.map((r) => [r.dim, r.n])),
    integrity: handle.prepare('PRAGMA quick_check').get().quick_check,
  };
  if (options.session) {
    const session = learning.getSession(options.session);  // LearningSystem's own reader (parses config)
    result.session = session && { id: session.id, userId: session.userId, sessionType: session.sessionType,
      config: session.config, status: session.status, metadata: session.metadata };
  }
  return result;
}

async function search(db, vectorFile, dim, k) {
  requireFile(db);
  const raw = fs.readFileSync(vectorFile);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (!(dim > 0) || all.length % dim !== 0) throw new Error(`query file holds ${all.length} floats, not rows of ${dim}`);
  const lib = await agentdb();
  const handle = await lib.createDatabase(db);
  const queries = [];
  for (let start = 0; start < all.length; start += dim) {
    const memory = new lib.ReflexionMemory(handle, fixedEmbedder(all.subarray(start, start + dim)));
    const started = Date.now();
    const hits = await memory.retrieveRelevant({ task: 'user vector', k });
    queries.push({
      search_ms: Date.now() - started,
      hits: hits.map((h) => ({ episode_id: h.id, session_id: h.sessionId, task: h.task, similarity: h.similarity })),
    });
  }
  return { queries };
}

async function hold(db) {
  requireFile(db);
  const fd = fs.openSync(db, 'r');  // the reader has the file open from here on
  const inode = fs.fstatSync(fd).ino;
  process.stdout.write(JSON.stringify({ opened: db, inode }) + '\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  // AgentDB reads whatever path it is given: /proc/self/fd/N is the inode opened above, even if a new
  // file has been renamed over the name since.
  const result = await stats(`/proc/self/fd/${fd}`, {});
  return { ...result, inode, read_after_wait: true };
}

// The per-row path a client without bulk access would take: LearningSystem.startSession per user and
// submitFeedback per step (each updating the session's policy incrementally), then one save.
async function feedback(db, stepsFile) {
  const steps = JSON.parse(fs.readFileSync(stepsFile, 'utf8'));
  const lib = await agentdb();
  const handle = await lib.createDatabase(db);
  for (const schema of ['schema.sql', 'frontier-schema.sql']) {
    handle.exec(fs.readFileSync(path.join(dist, 'schemas', schema), 'utf8'));
  }
  const learning = new lib.LearningSystem(handle, noEmbedder);
  const sessions = new Map();
  const started = Date.now();
  for (const step of steps) {
    if (!sessions.has(step.user_id)) {
      sessions.set(step.user_id, await learning.startSession(String(step.user_id), step.algorithm,
        { learningRate: 0.1, discountFactor: 0.9 }));
    }
    await learning.submitFeedback({ sessionId: sessions.get(step.user_id), state: step.state, action: step.action,
      reward: step.reward, nextState: step.next_state, success: step.reward >= 2 / 3, timestamp: step.timestamp });
  }
  const insertedMs = Date.now() - started;
  handle.save();
  return { sessions: sessions.size, steps: steps.length, insert_ms: insertedMs, total_ms: Date.now() - started };
}

async function main(argv) {
  const [command, db, ...rest] = argv;
  if (!command || !db) throw new Error('usage: tv5-agentdb.mjs create|stats|search|hold|feedback <db> ...');
  if (command === 'create') return create(db);
  if (command === 'stats') {
    const at = rest.indexOf('--session');
    return stats(db, { session: at >= 0 ? rest[at + 1] : undefined });
  }
  if (command === 'search') return search(db, rest[0], Number(rest[1]), Number(rest[2] ?? 5));
  if (command === 'hold') return hold(db);
  if (command === 'feedback') return feedback(db, rest[0]);
  throw new Error(`unknown command ${command}`);
}

// This process's own peak RSS (VmHWM belongs to its memory map, so unlike getrusage it does not count
// the Python parent that forked it).
function peakRssMiB() {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return line ? Math.round(Number(line.split(/\s+/)[1]) / 1024) : null;
}

main(process.argv.slice(2)).then(
  (result) => {
    process.stdout.write(JSON.stringify({ ...result, node_peak_rss_mib: peakRssMiB() }) + '\n');
    process.exit(0);
  },
  (error) => { process.stderr.write(`tv5-agentdb: ${error.message}\n`); process.exit(2); },
);
