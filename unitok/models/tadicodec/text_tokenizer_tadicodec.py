"""A small trainable text tokenizer for tests and the tiny TaDiCodec variant.

The released TaDiCodec ships its own 32,100-entry fast tokenizer (`text_tokenizer/`); this helper builds a stand-in
of the same kind (a `PreTrainedTokenizerFast`) from a few sentences.
"""

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
_SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN]  # ids 0 and 1


def build_text_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-pair-encoding tokenizer on `texts`.

    - Special tokens: `<pad>` = id 0 (TaDiCodec pads text with 0), `<unk>` = id 1; no BOS/EOS and no post-processor
      (TaDiCodec tokenizes with `add_special_tokens=False`).
    - Normalisation: NFKC, then lowercase, so the tokenizer is case-insensitive.
    - Pre-tokenisation: SentencePiece-style `Metaspace` (spaces become "▁"), so decoding restores the spaces.
    - Size: `len(tokenizer) <= vocab_size`. The character alphabet is capped at `vocab_size - 2` (the most frequent
      characters; rarer ones map to `<unk>`), then merges are learnt until the vocabulary is full or no pair is left
      to merge, so small corpora give fewer than `vocab_size` entries.

    Args:
        texts: training sentences (non-empty list of strings, at least one non-blank).
        vocab_size: maximum vocabulary size, at least 3 (two special tokens and one character).

    Returns:
        A `PreTrainedTokenizerFast` with `pad_token="<pad>"`, `unk_token="<unk>"`, right padding.
    """
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}.")
    if not any(t.strip() for t in texts):
        raise ValueError("texts must contain at least one non-blank string to train the tokenizer on.")
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < len(_SPECIAL_TOKENS) + 1:
        raise ValueError(f"vocab_size must be an int >= {len(_SPECIAL_TOKENS) + 1}, got {vocab_size!r}.")

    tokenizer = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL_TOKENS,
        limit_alphabet=vocab_size - len(_SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN,
                                      padding_side="right")
    if wrapped.pad_token_id != 0 or len(wrapped) > vocab_size:  # guards the documented contract
        raise RuntimeError(f"tokenizer training broke its contract: pad id {wrapped.pad_token_id}, size {len(wrapped)}.")
    return wrapped


def build_character_tokenizer(alphabet: str) -> PreTrainedTokenizerFast:
    """A fixed character tokenizer (no training, so it is the same everywhere): `<pad>` = 0, `<unk>` = 1, the word
    boundary "▁" = 2, then the characters of `alphabet` in order; NFKC + lowercase normalisation. The tiny TaDiCodec
    variant builds its tokenizer this way from its config, so random-weight test models come with a processor."""
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"alphabet must be a non-empty string, got {alphabet!r}.")
    symbols = list(dict.fromkeys(["▁", *alphabet.replace(" ", "")]))
    vocab = {token: index for index, token in enumerate([*_SPECIAL_TOKENS, *symbols])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN,
                                   padding_side="right")


__all__ = ["build_text_tokenizer", "build_character_tokenizer"]
