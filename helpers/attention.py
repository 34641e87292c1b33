"""Attention (chapter 16): every position of a sequence reads a weighted average of the others.

What this module adds: the formula softmax(q k^T / sqrt(d) + mask) v written out from scratch, the causal
mask, and multi-head causal self-attention as an nn.Module with GPT-2's parameter names, so that the
book's GPT (helpers/gpt.py) and the chapters after it build on it.

    scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, scale=None,
                                 return_weights=False)
        the from-scratch formula; same arguments and mask conventions as
        torch.nn.functional.scaled_dot_product_attention (a boolean mask is True where a query MAY
        attend; a float mask is added to the scores).
    causal_mask(T_q, T_k=None, device=None)
        the (T_q, T_k) boolean mask of what each query may see, aligned to the end of the keys so that it
        is also right when the keys include a KV cache of earlier positions.
    SelfAttention(n_embd, n_head, dropout=0.0, bias=True, fused=True, causal=True, n_kv_head=None,
                  rotary=None, qkv_bias=None)
        c_attn (one Linear making q, k and v), the heads, c_proj. `fused=True` calls PyTorch's fused
        kernel, `fused=False` the from-scratch formula; both give the same numbers.
        forward(x, past_kv=None, use_cache=False) returns y, or (y, (k, v)) when use_cache is True:
        the KV-cache hook of chapter 19. past_kv is a (k, v) pair, which is concatenated with the new
        keys and values (a new tensor each step), or a cache object: anything with `obj[0]` the keys so
        far and `append(k, v) -> (k_all, v_all)`, which stores the new ones itself (chapter 19's
        preallocated helpers.generate.StaticKVCache writes them into a buffer in place); the object is
        then returned as the present cache.
        Two hooks for chapter 17's modern block: `n_kv_head < n_head` is grouped-query attention (each
        group of n_head // n_kv_head query heads shares one key/value head; n_kv_head=1 is multi-query
        attention), and `rotary(t, offset)` is applied to the queries and keys (RoPE, from
        helpers.transformer, passed in so that this chapter-16 module needs nothing from chapter 17).

One difference from PyTorch to know: with `is_causal=True` and fewer queries than keys, PyTorch aligns the
mask to the *start* of the keys (query 0 sees key 0 only); this module aligns it to the *end* (the last
query sees every key), which is what a KV cache needs. With as many queries as keys the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(T_q: int, T_k: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """(T_q, T_k) booleans, True where query i may attend to key j, i.e. j <= i + (T_k - T_q).

    The queries are the last T_q positions of the T_k keys: with T_q == T_k this is the lower triangle;
    with a KV cache of T_k - T_q earlier positions, each new query also sees all of them.
    """
    T_k = T_q if T_k is None else T_k
    if T_q < 1 or T_k < T_q:
        raise ValueError(f"need 1 <= T_q <= T_k for a causal mask, got T_q={T_q}, T_k={T_k}")
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T_q)  # (T_q, T_k)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scale + mask) v, from scratch. q: (..., T_q, d), k: (..., T_k, d), v: (..., T_k, d_v).

    attn_mask: boolean (True = may attend) or float (added to the scores), broadcastable to (..., T_q, T_k).
    is_causal: also hide the future (see `causal_mask`). scale: defaults to 1 / sqrt(d).
    dropout_p: drop attention weights with this probability (and scale the rest by 1 / (1 - p)).
    Returns the output (..., T_q, d_v), and the attention weights (..., T_q, T_k) if return_weights.
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k, v need at least 2 dims (T, d); got {tuple(q.shape)}, {tuple(k.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dim, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of positions, got {k.shape[-2]} and {v.shape[-2]}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    T_q, T_k = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T_q, T_k): how well each query matches each key
    if is_causal:
        scores = scores.masked_fill(~causal_mask(T_q, T_k, device=q.device), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k): each row sums to 1
    if dropout_p > 0.0:
        keep = torch.rand_like(weights) >= dropout_p
        weights = weights * keep / (1.0 - dropout_p)
    out = weights @ v  # (..., T_q, d_v): a weighted average of the values
    return (out, weights) if return_weights else out


class SelfAttention(nn.Module):
    """Multi-head self-attention with GPT-2's names: c_attn (x -> q, k, v in one Linear) and c_proj.

    The n_embd channels are split into n_head heads of n_embd // n_head channels; each head attends on
    its own, and c_proj mixes the heads' outputs back together. `causal=True` (a decoder such as GPT:
    each position sees only the past) is the default; `causal=False` lets every position see every
    other (an encoder, such as the vision transformer of chapter 22).

    Grouped-query attention: with n_kv_head < n_head, c_attn makes n_head query heads but only n_kv_head
    key and value heads (its output is n_embd + 2 * n_kv_head * head_size wide), and query head h reads
    key/value head h // (n_head // n_kv_head). The KV cache holds the n_kv_head heads only, which is what
    GQA saves: n_head / n_kv_head times less cache memory. `qkv_bias` (default: `bias`) gives c_attn its
    own bias switch (Qwen2 has biases on q, k, v and none on c_proj).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        fused: bool = True,
        causal: bool = True,
        n_kv_head: int | None = None,
        rotary: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
        qkv_bias: bool | None = None,
    ):
        super().__init__()
        if n_head < 1 or n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be a positive multiple of n_head ({n_head})")
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if n_kv_head < 1 or n_head % n_kv_head != 0:
            raise ValueError(f"n_head ({n_head}) must be a positive multiple of n_kv_head ({n_kv_head})")
        self.n_embd, self.n_head, self.n_kv_head, self.dropout = n_embd, n_head, n_kv_head, dropout
        self.head_size = n_embd // n_head
        self.fused, self.causal, self.rotary = fused, causal, rotary
        kv_width = n_kv_head * self.head_size  # channels of k (and of v)
        qkv_bias = bias if qkv_bias is None else qkv_bias
        self.c_attn = nn.Linear(n_embd, n_embd + 2 * kv_width, bias=qkv_bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)  # mixes the heads back together
        self.resid_dropout = nn.Dropout(dropout)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, C // self.head_size, self.head_size).transpose(1, 2)  # (B, heads, T, hs)

    def forward(
        self,
        x: torch.Tensor,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        use_cache: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: (B, T, C). past_kv: (k, v) of earlier positions, each (B, n_kv_head, T_past, hs), or None,
        or a cache object with append(k, v) -> (k_all, v_all) (see the class docstring).

        Returns y (B, T, C); with use_cache=True returns (y, (k, v)) with k, v of all T_past + T positions
        (or (y, the cache object) when past_kv was one).
        """
        if x.dim() != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"expected x of shape (B, T, {self.n_embd}), got {tuple(x.shape)}")
        B, T, C = x.shape
        kv_width = self.n_kv_head * self.head_size
        q, k, v = self.c_attn(x).split([C, kv_width, kv_width], dim=2)  # (B, T, C), 2 x (B, T, kv)
        q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)  # (B, nh or nkv, T, hs)
        T_past = 0 if past_kv is None else past_kv[0].shape[2]
        if self.rotary is not None:
            q, k = self.rotary(q, T_past), self.rotary(k, T_past)  # positions continue after the cache
        if past_kv is None or isinstance(past_kv, (tuple, list)):
            if past_kv is not None:
                k = torch.cat([past_kv[0], k], dim=2)  # (B, nkv, T_past + T, hs)
                v = torch.cat([past_kv[1], v], dim=2)  # (B, nkv, T_past + T, hs)
            present = (k, v)  # the cache keeps n_kv_head heads only
        else:
            k, v = past_kv.append(k, v)  # (B, nkv, T_past + T, hs) each: a cache object stores in place
            present = past_kv  # the same object, now T_past + T long
        if self.n_kv_head != self.n_head:
            group = self.n_head // self.n_kv_head
            k = k.repeat_interleave(group, dim=1)  # (B, nh, T_k, hs): each kv head serves `group` queries
            v = v.repeat_interleave(group, dim=1)  # (B, nh, T_k, hs)
        T_k = k.shape[2]
        dropout_p = self.dropout if self.training else 0.0
        if self.fused:
            mask, is_causal = None, False
            if self.causal and T == T_k:
                is_causal = True  # PyTorch's own causal mask is right when no cache is involved
            elif self.causal and T > 1:
                mask = causal_mask(T, T_k, device=x.device)  # (T, T_k), aligned to the end
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal
            )
        else:
            y = scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): the heads side by side again
        y = self.resid_dropout(self.c_proj(y))  # (B, T, C)
        return (y, present) if use_cache else y
