-- Initial schema for llm2llm run databases.
--
-- Provenance invariant: a generated example always points to the seed example
-- it came from, and only seed examples are ever sent to the teacher for
-- augmentation. The triggers below enforce both, so no code path can break
-- them by accident.

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- 'llm2llm', 'finetune', 'eda' or 'auggpt'.
    method        TEXT NOT NULL,
    -- 'running', 'finished' or 'failed'.
    status        TEXT NOT NULL DEFAULT 'running',
    -- Effective configuration (file merged with command-line flags) as JSON.
    config_json   TEXT NOT NULL,
    seed_path     TEXT NOT NULL,
    seed_sha256   TEXT NOT NULL,
    test_path     TEXT,
    test_sha256   TEXT,
    -- Free-form reason the run stopped early (no misses left, ...).
    stop_reason   TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at   TEXT
);

CREATE TABLE examples (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    -- 'seed', 'test' or 'generated'.
    kind            TEXT NOT NULL CHECK (kind IN ('seed', 'test', 'generated')),
    question        TEXT NOT NULL,
    answer          TEXT NOT NULL,
    -- 1-based line in the seed or test file; NULL for generated examples.
    source_line     INTEGER,
    -- Generated examples only: the seed example, the iteration that produced
    -- it (it joins the training set of iteration + 1), how ('llm2llm',
    -- 'eda', 'auggpt') and the teacher call, if any.
    parent_id       INTEGER REFERENCES examples(id),
    iteration       INTEGER,
    method          TEXT,
    teacher_call_id INTEGER REFERENCES teacher_calls(id),
    -- Order of generated examples within (run, iteration), so training sets
    -- are rebuilt in the same order after a resume.
    position        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((kind = 'generated') = (parent_id IS NOT NULL)),
    CHECK ((kind = 'generated') = (iteration IS NOT NULL))
);
CREATE INDEX examples_run_kind ON examples(run_id, kind);
CREATE INDEX examples_parent ON examples(parent_id);

CREATE TRIGGER generated_example_needs_seed_parent
BEFORE INSERT ON examples
WHEN NEW.kind = 'generated'
 AND COALESCE((SELECT kind FROM examples WHERE id = NEW.parent_id), '') <> 'seed'
BEGIN
    SELECT RAISE(ABORT, 'a generated example must have a seed example as parent');
END;

CREATE TRIGGER generated_example_parent_same_run
BEFORE INSERT ON examples
WHEN NEW.kind = 'generated'
 AND (SELECT run_id FROM examples WHERE id = NEW.parent_id) <> NEW.run_id
BEGIN
    SELECT RAISE(ABORT, 'a generated example must have a parent in the same run');
END;

-- One row per (run, iteration, phase). Phases: 'train', 'eval_seed',
-- 'eval_test', 'augment'. A phase's results and its row with
-- status 'done' are written in one transaction, so a 'done' phase is
-- complete and a resume restarts the first phase that is not.
CREATE TABLE phases (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    iteration   INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    -- Phase summary as JSON (training size, accuracy, counts by reason...).
    summary_json TEXT,
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    -- Wall-clock duration in seconds, summed over attempts.
    seconds     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, iteration, phase)
);

-- Per optimizer step training metrics.
CREATE TABLE training_metrics (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    iteration  INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    loss       REAL NOT NULL,
    lr         REAL NOT NULL,
    grad_norm  REAL,
    -- Supervised (unmasked) target tokens in the step.
    tokens     INTEGER NOT NULL,
    PRIMARY KEY (run_id, iteration, step)
);

CREATE TABLE predictions (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    iteration  INTEGER NOT NULL,
    example_id INTEGER NOT NULL REFERENCES examples(id),
    -- Raw generated text, the answer extracted from it, the extraction rule
    -- that decided, and whether it equals the reference answer.
    output     TEXT NOT NULL,
    extracted  TEXT,
    rule       TEXT NOT NULL,
    correct    INTEGER NOT NULL CHECK (correct IN (0, 1)),
    PRIMARY KEY (run_id, iteration, example_id)
);

-- The teacher journal: one row per logical request. `request_key` is a
-- SHA-256 over model, sampling settings, messages, seed example and sample
-- index; an 'ok' row with the same key is reused instead of calling the API.
CREATE TABLE teacher_calls (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    iteration         INTEGER NOT NULL,
    -- 'llm2llm' or 'auggpt'.
    purpose           TEXT NOT NULL,
    seed_example_id   INTEGER NOT NULL REFERENCES examples(id),
    sample_index      INTEGER NOT NULL DEFAULT 0,
    request_key       TEXT NOT NULL,
    model             TEXT NOT NULL,
    base_url          TEXT NOT NULL,
    -- Full request body as sent (messages and settings), never the API key.
    request_json      TEXT NOT NULL,
    -- 'pending', 'ok' or 'failed'.
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'failed')),
    response_text     TEXT,
    finish_reason     TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    -- Latency of the successful (or last) attempt, milliseconds.
    latency_ms        INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    -- Parse and validation outcome, as JSON counts by rejection reason.
    parse_json        TEXT,
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at       TEXT
);
CREATE INDEX teacher_calls_key ON teacher_calls(request_key, status);
CREATE INDEX teacher_calls_run ON teacher_calls(run_id, iteration);

CREATE TRIGGER teacher_call_needs_seed_example
BEFORE INSERT ON teacher_calls
WHEN COALESCE((SELECT kind FROM examples WHERE id = NEW.seed_example_id), '') <> 'seed'
BEGIN
    SELECT RAISE(ABORT, 'only seed examples may be sent to the teacher');
END;

-- Every HTTP attempt of a teacher call, including the failed ones.
CREATE TABLE teacher_attempts (
    call_id        INTEGER NOT NULL REFERENCES teacher_calls(id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    http_status    INTEGER,
    -- 'ok', 'retry' or 'fatal'.
    outcome        TEXT NOT NULL,
    error          TEXT,
    latency_ms     INTEGER NOT NULL,
    -- Delay before the next attempt (from Retry-After or backoff), ms.
    retry_after_ms INTEGER,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (call_id, attempt)
);

-- Items a teacher reply contained that were not accepted, with the reason.
CREATE TABLE rejected_items (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    iteration  INTEGER NOT NULL,
    call_id    INTEGER REFERENCES teacher_calls(id),
    seed_example_id INTEGER REFERENCES examples(id),
    reason     TEXT NOT NULL,
    text       TEXT NOT NULL
);
CREATE INDEX rejected_items_run ON rejected_items(run_id, iteration);
