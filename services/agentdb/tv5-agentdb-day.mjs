#!/usr/bin/env node
// A day's read-back through AgentDB 1.6.1's own code, in one process (the file is loaded once):
//
//   node tv5-agentdb-day.mjs audit <db> <session id> <f32 file> <dim> [k]
//       the session as LearningSystem reads it, the four tables' totals, and ReflexionMemory.retrieveRelevant
//       for each query vector in the file (JSON on stdout)
//
// Scoped to what a day changed: no whole-file scan (the release's agentdb checks run quick_check and the
// orphan count over the whole file). Kept apart from tv5-agentdb.mjs, whose text is part of the agentdb asset's
// code version (it creates the file); this one's is part of day_release's only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'node_modules', 'agentdb', 'dist');
const log = (...parts) => process.stderr.write(parts.map(String).join(' ') + '\n');
console.log = log;
console.info = log;
console.warn = log;

async function audit(db, sessionId, vectorFile, dim, k) {
  if (!fs.existsSync(db)) throw new Error(`no database file at ${db}`);  // AgentDB would create an empty one
  const raw = fs.readFileSync(vectorFile);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  if (!(dim > 0) || all.length % dim !== 0) throw new Error(`query file holds ${all.length} floats, not rows of ${dim}`);
  const { createDatabase } = await import(path.join(dist, 'db-fallback.js'));
  const { LearningSystem } = await import(path.join(dist, 'controllers', 'LearningSystem.js'));
  const { ReflexionMemory } = await import(path.join(dist, 'controllers', 'ReflexionMemory.js'));
  const handle = await createDatabase(db);
  const count = (table) => handle.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get().n;
  const session = new LearningSystem(handle, { embed: async () => new Float32Array(0), initialize: async () => {} })
    .getSession(sessionId);
  const queries = [];
  for (let start = 0; start < all.length; start += dim) {
    const vector = all.subarray(start, start + dim);
    const memory = new ReflexionMemory(handle, { embed: async () => vector, initialize: async () => {} });
    const started = Date.now();
    const hits = await memory.retrieveRelevant({ task: 'user vector', k });
    queries.push({ search_ms: Date.now() - started,
      hits: hits.map((h) => ({ episode_id: h.id, session_id: h.sessionId, similarity: h.similarity })) });
  }
  return {
    session: session && { id: session.id, metadata: session.metadata },
    sessions: count('learning_sessions'),
    experiences: count('learning_experiences'),
    episodes: count('episodes'),
    embeddings: count('episode_embeddings'),
    queries,
  };
}

const [command, db, session, vectorFile, dim, k] = process.argv.slice(2);
(command === 'audit' && db && session && vectorFile
  ? audit(db, session, vectorFile, Number(dim), Number(k ?? 5))
  : Promise.reject(new Error('usage: tv5-agentdb-day.mjs audit <db> <session id> <f32 file> <dim> [k]'))).then(
  (result) => { process.stdout.write(JSON.stringify(result) + '\n'); process.exit(0); },
  (error) => { process.stderr.write(`tv5-agentdb-day: ${error.message}\n`); process.exit(2); },
);
