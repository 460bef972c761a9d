-- Settings of a baseline run (method, EDA rates, examples per seed example,
-- matched run) as JSON; NULL for LLM2LLM runs, whose settings are all in
-- config_json. Kept apart so config_json stays one run configuration that
-- every reader parses the same way.
ALTER TABLE runs ADD COLUMN baseline_json TEXT;
