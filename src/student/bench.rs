//! `llm2llm bench`: training and generation throughput and peak memory.
//!
//! The default shape and workload are those of the PyTorch + PEFT reference
//! benchmark this engine is compared with: a random LLaMA with 8 layers,
//! hidden 512, 8 heads, MLP 1376, vocab 32000; LoRA r = 8 (alpha 16) on all
//! seven projections; training steps of 4 × 256 tokens with every token a
//! target (forward, backward and AdamW step, median of the timed steps after
//! one warm-up step); greedy generation of 64 new tokens for a batch of 8
//! random 64-token prompts, without stopping at eos. `--model DIR` measures a
//! checkpoint instead of a random model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::generate::greedy_batch;
use super::model::{Llama, Pass};
use super::train::{AdamW, Sequence, gradients, loss_sum};
use super::{DType, DeviceKind, LlamaConfig, LoraConfig, adapter};

/// Command-line arguments of `llm2llm bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Checkpoint directory to measure; without it a random model of the shape below is built.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Decoder layers of the random model.
    #[arg(long, default_value_t = 8)]
    pub layers: usize,
    /// Hidden size of the random model.
    #[arg(long, default_value_t = 512)]
    pub hidden: usize,
    /// Attention heads of the random model.
    #[arg(long, default_value_t = 8)]
    pub heads: usize,
    /// Key/value heads of the random model.
    #[arg(long, default_value_t = 8)]
    pub kv_heads: usize,
    /// MLP intermediate size of the random model.
    #[arg(long, default_value_t = 1376)]
    pub intermediate: usize,
    /// Vocabulary size of the random model.
    #[arg(long, default_value_t = 32000)]
    pub vocab: usize,
    /// Training sequence length, in tokens.
    #[arg(long, default_value_t = 256)]
    pub seq: usize,
    /// Training sequences per step.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Timed training steps (one more untimed warm-up step runs first).
    #[arg(long, default_value_t = 6)]
    pub steps: usize,
    /// LoRA rank on all seven projections (alpha is twice the rank).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Prompts generated together.
    #[arg(long, default_value_t = 8)]
    pub gen_batch: usize,
    /// Prompt length for generation, in tokens.
    #[arg(long, default_value_t = 64)]
    pub gen_prompt: usize,
    /// New tokens generated per prompt.
    #[arg(long, default_value_t = 64)]
    pub gen_new: usize,
    /// Weight and activation dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    match s {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::Bf16),
        "f16" => Ok(DType::F16),
        other => Err(format!("unknown dtype `{other}`; use f32, bf16 or f16")),
    }
}

/// Measured throughput and memory.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub params: usize,
    pub trainable: usize,
    pub train_tokens_per_s: f64,
    pub median_step_ms: f64,
    pub generate_new_tokens_per_s: f64,
    pub peak_rss_mb: Option<f64>,
}

/// Runs `llm2llm bench`.
pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let report = tokio::task::spawn_blocking(move || run(&args).map(|r| (args, r)))
        .await
        .context("the benchmark thread panicked")?;
    let (args, report) = report?;
    println!(
        "llm2llm candle; threads {}; params {:.1}M, trainable {:.2}M",
        candle_core::utils::get_num_threads(),
        report.params as f64 / 1e6,
        report.trainable as f64 / 1e6
    );
    match &args.model {
        Some(dir) => println!("model {}", dir.display()),
        None => println!(
            "shape layers={} hidden={} heads={}/{} inter={} vocab={}",
            args.layers, args.hidden, args.heads, args.kv_heads, args.intermediate, args.vocab
        ),
    }
    println!(
        "train batch {}x{}; gen batch {} prompt {} new {}; dtype {:?}",
        args.batch, args.seq, args.gen_batch, args.gen_prompt, args.gen_new, args.dtype
    );
    println!(
        "train_tokens_per_s {:.1}  (median step {:.0} ms)",
        report.train_tokens_per_s, report.median_step_ms
    );
    println!(
        "generate_new_tokens_per_s {:.1}",
        report.generate_new_tokens_per_s
    );
    match report.peak_rss_mb {
        Some(mb) => println!("peak_rss_mb {mb:.0}"),
        None => println!("peak_rss_mb unknown (no /proc/self/status)"),
    }
    Ok(())
}

/// Builds or loads the model and measures it.
pub fn run(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    if args.batch == 0 || args.seq < 2 || args.steps == 0 {
        anyhow::bail!("--batch and --steps must be at least 1 and --seq at least 2");
    }
    if args.gen_batch == 0 || args.gen_prompt == 0 || args.gen_new == 0 {
        anyhow::bail!("--gen-batch, --gen-prompt and --gen-new must be at least 1");
    }
    let device = DeviceKind::Cpu.open()?;
    let mut model = match &args.model {
        Some(dir) => {
            let options = super::LoadOptions {
                dtype: args.dtype,
                device: DeviceKind::Cpu,
            };
            super::Student::load(dir, &options)?.model().clone()
        }
        None => {
            if args.heads == 0 || args.kv_heads == 0 || args.hidden % args.heads != 0 {
                anyhow::bail!(
                    "--hidden must be a multiple of --heads, and both head counts positive"
                );
            }
            let config = LlamaConfig {
                vocab_size: args.vocab,
                hidden_size: args.hidden,
                intermediate_size: args.intermediate,
                num_hidden_layers: args.layers,
                num_attention_heads: args.heads,
                num_key_value_heads: args.kv_heads,
                head_dim: args.hidden / args.heads,
                rms_norm_eps: 1e-6,
                rope_theta: 10_000.0,
                max_position_embeddings: 2048,
                tie_word_embeddings: false,
                bos_token_id: Some(1),
                eos_token_id: Some(2),
            };
            Llama::random(&config, args.dtype.to_candle(), &device, 0)
                .context("cannot build the random model")?
        }
    };
    let lora = LoraConfig {
        r: args.rank,
        lora_alpha: 2.0 * args.rank as f64,
        lora_dropout: 0.0,
        target_modules: super::lora::Proj::ALL
            .iter()
            .map(|p| p.peft_name().to_string())
            .collect(),
    };
    adapter::init(&mut model, &lora, 0)?;
    let vars: Vec<_> = adapter::trainable_vars(&model)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let trainable = vars.iter().map(|v| v.elem_count()).sum();
    let params = model.parameter_count() + trainable;

    let vocab = model.config.vocab_size as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut random_ids =
        |n: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(3..vocab)).collect() };

    let sequences: Vec<Sequence> = (0..args.batch)
        .map(|_| Sequence {
            ids: random_ids(args.seq),
            prompt_len: 0,
        })
        .collect();
    let mut optimizer = AdamW::new(vars.clone(), 0.0)?;
    let mut times = Vec::with_capacity(args.steps);
    // Counted as the reference counts them: every token of the batch.
    let tokens = args.batch * args.seq;
    for step in 0..=args.steps {
        let start = Instant::now();
        let (sum, count) = loss_sum(&model, &sequences, Pass::Autograd { dropout: None })?;
        let loss = (sum / count as f64)?;
        let grads = gradients(&loss, &vars)?;
        optimizer.step(&grads, 1e-4)?;
        let elapsed = start.elapsed().as_secs_f64();
        tracing::debug!(step, seconds = elapsed, "benchmark training step");
        if step > 0 {
            times.push(elapsed);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];

    let prompts: Vec<Vec<u32>> = (0..args.gen_batch)
        .map(|_| random_ids(args.gen_prompt))
        .collect();
    greedy_batch(&model, &prompts, 4, None, &mut |_, _| false)?;
    let start = Instant::now();
    let out = greedy_batch(&model, &prompts, args.gen_new, None, &mut |_, _| false)?;
    let gen_seconds = start.elapsed().as_secs_f64();
    let new_tokens: usize = out.iter().map(|(ids, _)| ids.len()).sum();

    Ok(BenchReport {
        params,
        trainable,
        train_tokens_per_s: tokens as f64 / median,
        median_step_ms: median * 1000.0,
        generate_new_tokens_per_s: new_tokens as f64 / gen_seconds,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Peak resident set size of this process (VmHWM), in MiB, where Linux reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
