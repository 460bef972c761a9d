//! The LLaMA model, tokenizer and loader against the outputs Hugging Face
//! transformers 5.25 recorded for the tiny-llama fixture (float32, CPU).

mod student_support;

use llm2llm::student::generate::{Finish, greedy_batch};
use llm2llm::student::model::Pass;
use llm2llm::student::train::{Sequence, mean_loss};
use llm2llm::student::{GenerateConfig, LoadOptions, Student};
use student_support::*;

#[test]
fn tokenizer_ids_match_reference() {
    let student = load_student();
    for case in expected()["cases"].as_array().unwrap() {
        let ids = student
            .tokenizer()
            .encode(case["text"].as_str().unwrap(), true)
            .unwrap();
        assert_eq!(ids, ids_of(&case["ids"]), "ids of {}", case["text"]);
    }
}

#[test]
fn tokenizer_tokens_match_reference() {
    let student = load_student();
    for case in expected()["cases"].as_array().unwrap() {
        let tokens: Vec<String> = ids_of(&case["ids"])
            .iter()
            .map(|&id| student.tokenizer().id_to_token(id).unwrap())
            .collect();
        let reference: Vec<String> = case["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert_eq!(tokens, reference);
    }
}

#[test]
fn tokenizer_decodes_like_reference() {
    let student = load_student();
    for case in expected()["cases"].as_array().unwrap() {
        let prompt = student.tokenizer().decode(&ids_of(&case["ids"])).unwrap();
        assert_eq!(prompt, case["decoded"].as_str().unwrap());
        let generated = student
            .tokenizer()
            .decode(&ids_of(&case["greedy_new_ids"]))
            .unwrap();
        assert_eq!(generated, case["greedy_new_text"].as_str().unwrap());
    }
}

#[test]
fn logits_match_reference() {
    let student = load_student();
    for case in expected()["cases"].as_array().unwrap() {
        let logits = student.model().logits(&ids_of(&case["ids"])).unwrap();
        let reference = expected_tensor(case["logits_tensor"].as_str().unwrap());
        let diff = max_abs_diff(&logits, &reference);
        assert!(diff < 1e-4, "{}: max |diff| {diff}", case["logits_tensor"]);
    }
}

#[test]
fn autograd_path_matches_reference() {
    // The training path composes RMSNorm, RoPE and softmax from primitives;
    // the inference path uses candle's fused kernels. Both must agree.
    let student = load_student();
    for case in expected()["cases"].as_array().unwrap() {
        let ids = ids_of(&case["ids"]);
        let composed = student
            .model()
            .logits_with(&ids, Pass::Autograd { dropout: None })
            .unwrap();
        let fused = student.model().logits(&ids).unwrap();
        let reference = expected_tensor(case["logits_tensor"].as_str().unwrap());
        let to_reference = max_abs_diff(&composed, &reference);
        assert!(to_reference < 1e-4, "composed vs reference: {to_reference}");
        let between = max_abs_diff(&composed, &fused);
        assert!(between < 1e-4, "composed vs fused: {between}");
    }
}

#[test]
fn sharded_checkpoint_gives_same_logits() {
    let single = load_student();
    let sharded = Student::load(
        &fixture_dir().join("model-sharded"),
        &LoadOptions::default(),
    )
    .unwrap();
    let ids = ids_of(&expected()["cases"][0]["ids"]);
    let a = single.model().logits(&ids).unwrap();
    let b = sharded.model().logits(&ids).unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

#[test]
fn greedy_ids_match_reference() {
    let student = load_student();
    for case in expected()["cases"].as_array().unwrap() {
        let prompt = ids_of(&case["ids"]);
        let out = greedy_batch(student.model(), &[prompt], 20, None, &mut |_, _| false).unwrap();
        assert_eq!(
            out[0].0,
            ids_of(&case["greedy_new_ids"]),
            "{}",
            case["text"]
        );
    }
}

#[test]
fn batched_greedy_matches_one_at_a_time() {
    // Prompts of different lengths in one left-padded batch.
    let student = load_student();
    let cases = expected()["cases"].as_array().unwrap().clone();
    let prompts: Vec<Vec<u32>> = cases.iter().map(|c| ids_of(&c["ids"])).collect();
    let out = greedy_batch(student.model(), &prompts, 20, None, &mut |_, _| false).unwrap();
    for (case, (ids, finish)) in cases.iter().zip(out) {
        assert_eq!(ids, ids_of(&case["greedy_new_ids"]), "{}", case["text"]);
        assert_eq!(finish, Finish::Length);
    }
}

#[test]
fn generation_stops_at_eos() {
    // Prompt 2's greedy path produces eos (id 2) as its ninth token.
    let student = load_student();
    let case = &expected()["cases"][2];
    let out = student
        .generate(
            &[case["text"].as_str().unwrap().to_string()],
            &GenerateConfig {
                max_new_tokens: 20,
                stop: vec![],
                batch_size: 4,
            },
        )
        .unwrap();
    let reference = ids_of(&case["greedy_new_ids"]);
    assert_eq!(out[0].token_ids, reference[..8].to_vec());
    assert_eq!(out[0].finish_reason, "eos");
}

#[test]
fn generation_stops_at_stop_string() {
    let student = load_student();
    let case = &expected()["cases"][0];
    // The reference continuation is ". ha��oks cook…": stop at "oks".
    let out = student
        .generate(
            &[case["text"].as_str().unwrap().to_string()],
            &GenerateConfig {
                max_new_tokens: 20,
                stop: vec!["oks".into()],
                batch_size: 1,
            },
        )
        .unwrap();
    assert_eq!(out[0].finish_reason, "stop");
    assert_eq!(out[0].text, ". ha��");
}

#[test]
fn generation_respects_max_new_tokens() {
    let student = load_student();
    let prompts: Vec<String> = expected()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    let config = GenerateConfig {
        max_new_tokens: 5,
        stop: vec![],
        batch_size: 2,
    };
    let out = student.generate(&prompts, &config).unwrap();
    assert_eq!(out.len(), 3);
    for (g, case) in out.iter().zip(expected()["cases"].as_array().unwrap()) {
        assert_eq!(g.token_ids, ids_of(&case["greedy_new_ids"])[..5].to_vec());
        assert_eq!(g.finish_reason, "length");
    }
}

#[test]
fn sft_losses_match_reference() {
    let student = load_student();
    let sft = &expected()["sft"];
    let prompt_ids = ids_of(&sft["prompt_ids"]);
    let mut ids = prompt_ids.clone();
    ids.extend(ids_of(&sft["answer_ids"]));

    let masked = Sequence {
        ids: ids.clone(),
        prompt_len: prompt_ids.len(),
    };
    let unmasked = Sequence { ids, prompt_len: 0 };
    let masked_loss = mean_loss(student.model(), &[masked]).unwrap();
    let unmasked_loss = mean_loss(student.model(), &[unmasked]).unwrap();
    assert!(
        (masked_loss - sft["masked_loss"].as_f64().unwrap()).abs() < 1e-4,
        "{masked_loss}"
    );
    assert!(
        (unmasked_loss - sft["unmasked_loss"].as_f64().unwrap()).abs() < 1e-4,
        "{unmasked_loss}"
    );
}

#[test]
fn sft_tokenization_matches_reference() {
    let student = load_student();
    let sft = &expected()["sft"];
    let example = llm2llm::student::SftExample {
        prompt: sft["prompt"].as_str().unwrap().into(),
        completion: sft["answer"].as_str().unwrap().into(),
    };
    let sequence = student.sft_sequence(&example, 1024).unwrap();
    let prompt_ids = ids_of(&sft["prompt_ids"]);
    let mut ids = prompt_ids.clone();
    ids.extend(ids_of(&sft["answer_ids"]));
    assert_eq!(sequence.ids, ids);
    assert_eq!(sequence.prompt_len, prompt_ids.len());
}

#[test]
fn padded_batch_loss_matches_single_losses() {
    // Right padding and the padding mask must not change a sequence's loss.
    let student = load_student();
    let cases = expected()["cases"].as_array().unwrap().clone();
    let sequences: Vec<Sequence> = cases
        .iter()
        .map(|c| Sequence {
            ids: ids_of(&c["ids"]),
            prompt_len: 3,
        })
        .collect();
    let batched =
        llm2llm::student::train::loss_sum(student.model(), &sequences, Pass::Inference).unwrap();
    let mut single_sum = 0.0;
    for s in &sequences {
        let (sum, _) = llm2llm::student::train::loss_sum(
            student.model(),
            std::slice::from_ref(s),
            Pass::Inference,
        )
        .unwrap();
        single_sum += sum.to_scalar::<f32>().unwrap() as f64;
    }
    let batched_sum = batched.0.to_scalar::<f32>().unwrap() as f64;
    assert!(
        (batched_sum - single_sum).abs() < 1e-3,
        "{batched_sum} vs {single_sum}"
    );
}
