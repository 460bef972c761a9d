//! Reading model weights from a Hugging Face checkpoint directory.
//!
//! A checkpoint holds either one `model.safetensors` or shards listed in
//! `model.safetensors.index.json` (its `weight_map` maps each tensor name to
//! its shard file). Files are memory-mapped; each tensor is checked against
//! the shape the model expects and converted to the requested dtype, and
//! every error names the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

/// Failure to find, read or accept a weight.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("no weights in {dir}: expected model.safetensors or model.safetensors.index.json")]
    NoWeights { dir: PathBuf },
    #[error("cannot read shard index {path}")]
    Index {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("weight file {path} is missing (listed in {index})")]
    MissingShard { path: PathBuf, index: PathBuf },
    #[error("cannot open weight file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("tensor `{name}` is missing from {location}")]
    MissingTensor { name: String, location: String },
    #[error("tensor `{name}` in {path} has shape {actual:?}, expected {expected:?}")]
    Shape {
        name: String,
        path: PathBuf,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("cannot load tensor `{name}` from {path}")]
    Load {
        name: String,
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
}

/// The memory-mapped safetensors files of one checkpoint.
pub struct Weights {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    /// Tensor name to index in `files`; empty for a single-file checkpoint.
    routing: HashMap<String, usize>,
    /// Where a missing tensor was looked for, for error messages.
    location: String,
    device: Device,
    dtype: DType,
}

impl Weights {
    /// Opens the weights of the checkpoint in `dir`.
    pub fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self, WeightError> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            return Self::open_sharded(dir, &index, dtype, device);
        }
        if !single.is_file() {
            return Err(WeightError::NoWeights {
                dir: dir.to_owned(),
            });
        }
        let file = open_mmap(&single)?;
        Ok(Self {
            files: vec![(single.clone(), file)],
            routing: HashMap::new(),
            location: single.display().to_string(),
            device: device.clone(),
            dtype,
        })
    }

    fn open_sharded(
        dir: &Path,
        index: &Path,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, WeightError> {
        let index_error = |source: Box<dyn std::error::Error + Send + Sync>| WeightError::Index {
            path: index.to_owned(),
            source,
        };
        let text = std::fs::read_to_string(index).map_err(|e| index_error(Box::new(e)))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| index_error(Box::new(e)))?;
        let map = json
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| index_error("field `weight_map` is missing or not an object".into()))?;

        // Shards in sorted order so that loading is the same on every run.
        let mut shard_names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
        shard_names.sort_unstable();
        shard_names.dedup();
        let mut files = Vec::with_capacity(shard_names.len());
        for name in &shard_names {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(WeightError::MissingShard {
                    path,
                    index: index.to_owned(),
                });
            }
            files.push((path.clone(), open_mmap(&path)?));
        }
        let mut routing = HashMap::with_capacity(map.len());
        for (tensor, shard) in map {
            let shard = shard.as_str().ok_or_else(|| {
                index_error(format!("weight_map entry `{tensor}` is not a file name").into())
            })?;
            let position = shard_names
                .binary_search(&shard)
                .expect("every shard name was collected from the same map");
            routing.insert(tensor.clone(), position);
        }
        Ok(Self {
            files,
            routing,
            location: format!("{} (and the shards it lists)", index.display()),
            device: device.clone(),
            dtype,
        })
    }

    /// Whether the checkpoint holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    fn find(&self, name: &str) -> Option<&(PathBuf, MmapedSafetensors)> {
        if self.routing.is_empty() {
            let file = &self.files[0];
            return file.1.get(name).is_ok().then_some(file);
        }
        let file = &self.files[*self.routing.get(name)?];
        file.1.get(name).is_ok().then_some(file)
    }

    /// Loads tensor `name`, checks that its shape is `shape` and converts it
    /// to the model dtype.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, WeightError> {
        let (path, file) = self.find(name).ok_or_else(|| WeightError::MissingTensor {
            name: name.to_owned(),
            location: self.location.clone(),
        })?;
        let view = file.get(name).map_err(|source| WeightError::Load {
            name: name.to_owned(),
            path: path.clone(),
            source,
        })?;
        if view.shape() != shape {
            return Err(WeightError::Shape {
                name: name.to_owned(),
                path: path.clone(),
                expected: shape.to_vec(),
                actual: view.shape().to_vec(),
            });
        }
        let load_error = |source| WeightError::Load {
            name: name.to_owned(),
            path: path.clone(),
            source,
        };
        file.load(name, &self.device)
            .and_then(|t| t.to_dtype(self.dtype))
            .map_err(load_error)
    }
}

fn open_mmap(path: &Path) -> Result<MmapedSafetensors, WeightError> {
    // SAFETY: the mapping is read-only. A checkpoint file changed by another
    // process while mapped is undefined behaviour, as with every mmap-based
    // safetensors reader; tensors are copied out at load time, so the window
    // is the load itself.
    unsafe { MmapedSafetensors::new(path) }.map_err(|source| WeightError::Open {
        path: path.to_owned(),
        source,
    })
}
