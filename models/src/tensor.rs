//! A small dense tensor for weir's own ONNX evaluator: f32, i64 or bool data with a shape, and
//! numpy-style broadcasting for element-wise operators.
use crate::{Error, Result};

/// Tensor data.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// A dense row-major tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor {
            shape,
            data: Data::F32(v),
        }
    }

    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Tensor {
        Tensor {
            shape,
            data: Data::I64(v),
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_f32(&self) -> Result<&[f32]> {
        match &self.data {
            Data::F32(v) => Ok(v),
            _ => Err(Error::Eval("expected a float tensor".into())),
        }
    }

    pub fn as_i64(&self) -> Result<&[i64]> {
        match &self.data {
            Data::I64(v) => Ok(v),
            _ => Err(Error::Eval("expected an int64 tensor".into())),
        }
    }

    /// Converts to ONNX data type `to` (1 = float, 7 = int64, 9 = bool, 11 = double as float).
    pub fn cast(&self, to: i64) -> Result<Tensor> {
        let n = self.len();
        let as_f = |i: usize| -> f32 {
            match &self.data {
                Data::F32(v) => v[i],
                Data::I64(v) => v[i] as f32,
                Data::Bool(v) => v[i] as i32 as f32,
            }
        };
        let data = match to {
            1 | 11 => Data::F32((0..n).map(as_f).collect()),
            7 | 6 => Data::I64(match &self.data {
                Data::F32(v) => v.iter().map(|x| *x as i64).collect(),
                Data::I64(v) => v.clone(),
                Data::Bool(v) => v.iter().map(|b| *b as i64).collect(),
            }),
            9 => Data::Bool((0..n).map(|i| as_f(i) != 0.0).collect()),
            other => {
                return Err(Error::Eval(format!(
                    "Cast to ONNX type {other} is not supported"
                )))
            }
        };
        Ok(Tensor {
            shape: self.shape.clone(),
            data,
        })
    }
}

/// The broadcast shape of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let x = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let y = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::Eval(format!("cannot broadcast {a:?} with {b:?}"))),
        };
    }
    Ok(out)
}

/// For each element of `out`, the index of the element of a tensor of `shape` it reads.
pub fn broadcast_index(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let total: usize = out.iter().product();
    let offset = out.len() - shape.len();
    let mut strides = vec![0usize; out.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[i + offset] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    let mut idx = Vec::with_capacity(total);
    let mut pos = vec![0usize; out.len()];
    for _ in 0..total {
        idx.push(pos.iter().zip(&strides).map(|(p, s)| p * s).sum());
        for d in (0..out.len()).rev() {
            pos[d] += 1;
            if pos[d] < out[d] {
                break;
            }
            pos[d] = 0;
        }
    }
    idx
}

/// Applies a binary function element-wise with broadcasting.
pub fn zip<T: Copy, U>(
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    f: impl Fn(T, T) -> U,
) -> Result<(Vec<usize>, Vec<U>)> {
    let shape = broadcast_shape(sa, sb)?;
    if sa == sb {
        return Ok((shape, a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()));
    }
    let ia = broadcast_index(sa, &shape);
    let ib = broadcast_index(sb, &shape);
    Ok((
        shape,
        ia.iter().zip(&ib).map(|(i, j)| f(a[*i], b[*j])).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_like_numpy() {
        let (s, v) = zip(
            &[1.0f32, 2.0, 3.0, 4.0],
            &[2, 2],
            &[10.0f32],
            &[1],
            |a, b| a + b,
        )
        .unwrap();
        assert_eq!((s, v), (vec![2, 2], vec![11.0, 12.0, 13.0, 14.0]));
        let (s, v) = zip(&[1i64, 2], &[2, 1], &[10i64, 20, 30], &[3], |a, b| a * b).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(v, vec![10, 20, 30, 20, 40, 60]);
    }
}
