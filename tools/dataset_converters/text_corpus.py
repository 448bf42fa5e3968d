# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""Turn raw text (BookCorpus, a Wikipedia dump's extracted text) into the
one-passage-per-line file that ``TextLinesDataset`` reads for MLM.

    python tools/dataset_converters/text_corpus.py books/*.txt wiki/*.txt \
        --out data/books_wiki/train.txt --max-words 128

Paragraphs (blank-line separated) are split into passages of at most
``--max-words`` words at sentence ends where possible; whitespace is
normalised; passages shorter than ``--min-words`` are dropped.
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Iterable, Iterator, List

_SENTENCE_END = re.compile(r'(?<=[.!?])\s+')


def paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Blank-line separated paragraphs, whitespace normalised."""
    buf: List[str] = []
    for line in lines:
        if line.strip():
            buf.append(line.strip())
        elif buf:
            yield ' '.join(' '.join(buf).split())
            buf = []
    if buf:
        yield ' '.join(' '.join(buf).split())


def passages(paragraph: str, max_words: int) -> Iterator[str]:
    """Split a paragraph into passages of at most ``max_words`` words,
    cutting at sentence ends when a sentence fits."""
    current: List[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        words = sentence.split()
        while words:
            room = max_words - len(current)
            if len(words) <= room:
                current += words
                words = []
            elif current:
                yield ' '.join(current)
                current = []
            else:  # one sentence longer than a passage
                yield ' '.join(words[:max_words])
                words = words[max_words:]
    if current:
        yield ' '.join(current)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('inputs', nargs='+', help='UTF-8 text files')
    parser.add_argument('--out', required=True)
    parser.add_argument('--max-words', type=int, default=128)
    parser.add_argument('--min-words', type=int, default=4)
    args = parser.parse_args(argv)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    written = 0
    with open(args.out, 'w', encoding='utf-8') as out:
        for path in args.inputs:
            with open(path, encoding='utf-8', errors='replace') as f:
                for para in paragraphs(f):
                    for passage in passages(para, args.max_words):
                        if len(passage.split()) >= args.min_words:
                            out.write(passage + '\n')
                            written += 1
    print(f'wrote {written} passages to {args.out}')
    return 0 if written else 1


if __name__ == '__main__':
    sys.exit(main())
