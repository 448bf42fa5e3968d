# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
import pytest
import torch

from mmupv2.models.tasks import beam_search, greedy_search

EOS = 0


class TableStepper:
    """Next-token log-probs depend only on the previous token (a Markov
    chain over 4 tokens), so the best sequences can be worked out by
    hand."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table.log()
        self.calls = 0

    def first(self, tokens):
        self.calls += 1
        return self.table[tokens[:, -1]]

    def next(self, tokens):
        self.calls += 1
        return self.table[tokens[:, -1]]

    def select(self, index):
        pass


# token 3 is the start; after 3, token 1 is likely but leads to a poor
# continuation; token 2 is less likely but then ends with certainty.
TABLE = torch.tensor([
    [1.0, 0.0, 0.0, 0.0],  # after EOS
    [0.3, 0.35, 0.35, 0.0],  # after 1
    [1.0, 0.0, 0.0, 0.0],  # after 2: end
    [0.0, 0.6, 0.4, 0.0],  # after start
])


def test_greedy_follows_the_most_likely_token():
    out = greedy_search(TableStepper(TABLE), 1, bos_id=3, eos_id=EOS,
                        max_length=5, banned_ids=[3])
    # 1, then 1 or 2 (a tie: argmax takes the first), ... until length 5
    assert out[0, 0] == 1


def test_beam_search_finds_the_better_sequence():
    seq, score = beam_search(TableStepper(TABLE), 1, bos_id=3, eos_id=EOS,
                             beam_size=2, max_length=5, length_penalty=0.0,
                             banned_ids=[3])
    # [2, EOS] has probability 0.4, better than any sequence through 1
    assert seq[0].tolist()[:2] == [2, EOS]
    torch.testing.assert_close(score[0], torch.tensor(0.4).log())


def test_length_penalty_prefers_longer():
    table = torch.tensor([
        [1.0, 0.0, 0.0],
        [0.3, 0.7, 0.0],  # after 1: mostly more 1s
        [0.45, 0.55, 0.0],  # after start: end now or go on
    ])
    short, _ = beam_search(TableStepper(table), 1, bos_id=2, eos_id=0,
                           beam_size=2, max_length=4, length_penalty=0.0,
                           banned_ids=[2])
    long, _ = beam_search(TableStepper(table), 1, bos_id=2, eos_id=0,
                          beam_size=2, max_length=4, length_penalty=2.0,
                          banned_ids=[2])
    assert short[0, 0] == 0
    assert long[0, 0] == 1


def test_stops_when_every_beam_ended():
    stepper = TableStepper(TABLE)
    seq, _ = beam_search(stepper, 2, bos_id=3, eos_id=EOS, beam_size=2,
                         max_length=20, banned_ids=[3])
    assert seq.shape[1] < 20 and stepper.calls < 20


def test_beam_one_equals_greedy_on_random_tables():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        table = torch.rand(6, 6, generator=gen).softmax(-1)
        greedy = greedy_search(TableStepper(table), 1, 5, 0, max_length=7)
        beam, _ = beam_search(TableStepper(table), 1, 5, 0, beam_size=1,
                              max_length=7)
        assert torch.equal(greedy[0], beam[0])


class PerImageStepper:
    """A Markov chain per image: row ``r`` of the search belongs to image
    ``rows[r]``, and ``select`` reorders that assignment as it would the
    rows' decoder states."""

    def __init__(self, tables: torch.Tensor) -> None:
        self.tables = tables.log()  # (images, tokens, tokens)
        self.rows = None

    def first(self, tokens):
        self.rows = torch.arange(tokens.shape[0])
        return self.tables[self.rows, tokens[:, -1]]

    def next(self, tokens):
        return self.tables[self.rows, tokens[:, -1]]

    def select(self, index):
        self.rows = self.rows[index]


@pytest.mark.parametrize('beam_size', [2, 3])
def test_batched_beam_search_equals_per_image(beam_size):
    """Each image of a batch gets the sequence and score it gets alone:
    the beams are reordered within their own image."""
    gen = torch.Generator().manual_seed(0)
    tables = (3 * torch.randn(4, 6, 6, generator=gen)).softmax(-1)
    kwargs = dict(bos_id=5, eos_id=0, beam_size=beam_size, max_length=6,
                  length_penalty=1.0, banned_ids=[5])
    seqs, scores = beam_search(PerImageStepper(tables), 4, **kwargs)
    alone = [
        beam_search(PerImageStepper(tables[i:i + 1]), 1, **kwargs)
        for i in range(4)
    ]
    assert len({tuple(seq[0].tolist()) for seq, _ in alone}) > 1
    for i, (seq, score) in enumerate(alone):
        length = seq.shape[1]
        assert seqs[i, :length].tolist() == seq[0].tolist()
        assert bool((seqs[i, length:] == 0).all())
        torch.testing.assert_close(scores[i], score[0])
