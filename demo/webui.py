# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
"""A web page for a Uni-Perceiver v2 model (Gradio): upload or pick an
image, choose a task, type class names or texts, see the drawing and the
scores. Every model call goes through
:class:`~mmupv2.apis.UniPerceiverInferencer`.

Example::

    pip install -e .[webui]            # gradio, not a core dependency
    make demo                          # trains work_dirs/demo/iter_1500.pth
    python demo/webui.py               # http://127.0.0.1:7860
    python demo/webui.py CONFIG --weights CKPT --port 8080

Without ``--weights`` the page takes the newest checkpoint of ``make demo``
(``work_dirs/demo/iter_1500.pth``, else the newest ``*.pth`` there); with
none it starts on random weights and says so on the page.

Data flow of one request (the ``/predict`` endpoint)::

    image (H, W, 3) RGB ──► BGR ──► inferencer(task, classes | texts)
        ──► predictions ──► table rows (rank, label / text, score, box)
                         ──► JSON summary
        ──► visualization (H, W, 3) RGB drawing (boxes / masks / text)
"""
import argparse
import glob
import os
import os.path as osp
import re
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

# No analytics, no version check: the page must work without internet.
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
if __name__ == '__main__':  # and no Hub look-ups (read when it is imported)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')

try:
    import gradio as gr
except ImportError:  # an optional extra; main() says how to install it
    gr = None

from mmupv2.apis import UniPerceiverInferencer, canonical_task  # noqa: E402
from mmupv2.structures import UPv2DataSample  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The config of ``make demo`` and where it writes its checkpoints.
DEFAULT_CONFIG = osp.join(ROOT, 'configs', 'uniperceiver_v2',
                          'upv2_lite0-minilm_shapes.py')
DEFAULT_WORK_DIR = osp.join(ROOT, 'work_dirs', 'demo')
DEMO_CHECKPOINT = 'iter_1500.pth'
#: Example images offered under the upload box (when generated).
EXAMPLES_GLOB = osp.join(ROOT, 'data', 'shapes', 'images', 'val', '*.png')
NUM_EXAMPLES = 6
#: (shown name, task method) in the order of the task selector.
TASKS = (('Detect', 'detect'), ('Segment', 'segment'),
         ('Classify', 'classify'), ('Caption', 'caption'),
         ('Retrieve', 'retrieve'))
METHODS = tuple(method for _, method in TASKS)
#: Tasks that take class names (the open-vocabulary label space).
NAMED_TASKS = ('detect', 'segment', 'classify')
#: The example texts of retrieval (the placeholder; preloaded texts).
EXAMPLE_TEXTS = 'a red circle\ntwo blue squares\na green star'
TABLE_HEADERS = ['rank', 'label / text', 'score', 'box (x1, y1, x2, y2)']
#: Instances listed in the table at most (those above the threshold).
MAX_ROWS = 50
INSTALL_HINT = ('gradio is not installed; install the web demo extra: '
                "pip install -e '.[webui]'")

Row = List[Union[int, str, float]]


# ------------------------------------------------------------ set-up
def find_checkpoint(work_dir: str = DEFAULT_WORK_DIR) -> Optional[str]:
    """The checkpoint of ``make demo`` in ``work_dir``: ``iter_1500.pth``
    if present, else the newest ``*.pth`` (by modification time), else
    None."""
    preferred = osp.join(work_dir, DEMO_CHECKPOINT)
    if osp.isfile(preferred):
        return preferred
    found = glob.glob(osp.join(work_dir, '*.pth'))
    return max(found, key=osp.getmtime) if found else None


def example_images(pattern: str = EXAMPLES_GLOB,
                   num: int = NUM_EXAMPLES) -> List[str]:
    """The first ``num`` images matching ``pattern`` (sorted by name)."""
    return sorted(glob.glob(pattern))[:num]


def available_tasks(inferencer: UniPerceiverInferencer) -> List[str]:
    """The task methods (``'detect'`` ...) the model has a head and an
    inference pipeline for, in the order of :data:`TASKS`."""
    return [
        method for _, method in TASKS
        if canonical_task(method) in inferencer.pipeline
    ]


def parse_class_names(text: Optional[str]
                      ) -> Optional[List[Union[str, List[str]]]]:
    """Comma-separated class names; ``|`` separates synonyms of one class
    (``'goldfish|gold fish, tench'``). Empty -> None (the model's own)."""
    names = []
    for item in (text or '').split(','):
        synonyms = [s.strip() for s in item.split('|') if s.strip()]
        if synonyms:
            names.append(synonyms[0] if len(synonyms) == 1 else synonyms)
    return names or None


def parse_texts(text: Optional[str]) -> List[str]:
    """Retrieval texts: one per line, blank lines dropped."""
    return [line.strip() for line in (text or '').splitlines()
            if line.strip()]


# ------------------------------------------------------------ results
def _box(box: Sequence[float]) -> str:
    return ', '.join(f'{v:.1f}' for v in box)


def instance_rows(sample: UPv2DataSample, score_thr: float
                  ) -> Tuple[List[Row], str, Dict[str, Any]]:
    """The instances scoring above ``score_thr`` (at most
    :data:`MAX_ROWS`): table rows, a one-line summary and a JSON-able
    summary."""
    instances = sample.pred_instances.cpu()
    keep = instances[instances.scores > score_thr]
    found = list(zip(keep.label_names, keep.scores.tolist(),
                     keep.bboxes.tolist()))[:MAX_ROWS]
    rows = [[i + 1, name, round(score, 4), _box(box)]
            for i, (name, score, box) in enumerate(found)]
    summary = (f'{len(keep)} of {len(instances)} instances score above '
               f'{score_thr:g}')
    if not len(keep):
        summary += ' (lower the score threshold to see more)'
    info = dict(
        classes=list(sample.metainfo.get('classes', ())),
        num_instances=len(instances),
        instances=[
            dict(label=name, score=score, bbox=box)
            for name, score, box in found
        ])
    return rows, summary, info


def result_rows(method: str, sample: UPv2DataSample, score_thr: float,
                texts: List[str]) -> Tuple[List[Row], str, Dict[str, Any]]:
    """The table rows (:data:`TABLE_HEADERS`), a one-line summary and a
    JSON-able summary of one prediction of ``method``."""
    if method in ('detect', 'segment'):
        return instance_rows(sample, score_thr)
    if method == 'classify':
        top = list(zip(sample.pred_topk_classes,
                       sample.pred_topk_scores.tolist()))
        rows = [[i + 1, name, round(score, 4), '']
                for i, (name, score) in enumerate(top)]
        info = dict(classes=list(sample.metainfo.get('classes', ())),
                    pred_class=sample.pred_class,
                    topk=[dict(label=n, score=s) for n, s in top])
        return rows, f'top-1: **{sample.pred_class}**', info
    if method == 'caption':
        caption = sample.pred_caption
        return [[1, caption, '', '']], f'"{caption}"', dict(caption=caption)
    scores = sample.pred_score.tolist()
    order = sample.pred_label.tolist()
    rows = [[rank + 1, texts[i], round(scores[i], 4), '']
            for rank, i in enumerate(order)]
    info = dict(ranking=[
        dict(text=texts[i], similarity=scores[i]) for i in order
    ])
    return rows, f'best text: "{texts[order[0]]}"', info


def predict(inferencer: UniPerceiverInferencer,
            image: Optional[np.ndarray],
            method: str,
            class_names: Optional[str] = None,
            texts: Optional[str] = None,
            score_thr: float = 0.3,
            topk: int = 5,
            lock: Optional[threading.Lock] = None
            ) -> Tuple[np.ndarray, List[Row], Dict[str, Any], str]:
    """Run one task on one image, as the page does.

    Args:
        inferencer: the model.
        image: (H, W, 3) RGB uint8 (what ``gr.Image(type='numpy')`` gives).
        method: ``'detect'``, ``'segment'``, ``'classify'``, ``'caption'``
            or ``'retrieve'``.
        class_names: comma-separated class names (detect / segment) or
            labels (classify); empty: the model's own.
        texts: retrieval texts, one per line.
        score_thr: instances above it are drawn and listed.
        topk: labels listed by classify.
        lock: held during the model call (calls share the inferencer's
            visualizer, which draws one image at a time, so they must not
            overlap).

    Returns:
        tuple: the (H, W, 3) RGB drawing, the table rows
        (:data:`TABLE_HEADERS`), a JSON-able summary (with ``task``) and a
        one-line summary.

    Raises:
        ValueError: no image, an unknown task, retrieval without texts, or
            what the inferencer rejects; the message says which.
    """
    if image is None:
        raise ValueError('upload or pick an image first')
    if method not in METHODS:
        raise ValueError(f'unknown task {method!r}; expected one of '
                         f'{", ".join(METHODS)}')
    image = np.asarray(image)
    if image.ndim == 2:  # grey
        image = np.repeat(image[..., None], 3, axis=2)
    bgr = np.ascontiguousarray(image[..., 2::-1]).astype(np.uint8)
    text_list = parse_texts(texts)
    if method == 'retrieve' and not text_list:
        raise ValueError('retrieve: type the texts to rank, one per line')
    kwargs = dict(task=method, return_vis=True, return_datasamples=True)
    if method in ('detect', 'segment'):
        kwargs.update(classes=parse_class_names(class_names),
                      pred_score_thr=float(score_thr))
    elif method == 'classify':
        kwargs.update(classes=parse_class_names(class_names),
                      topk=int(topk))
    elif method == 'retrieve':
        kwargs.update(texts=text_list)
    with lock or threading.Lock():
        result = inferencer(bgr, **kwargs)
    sample = result['predictions'][0]
    rows, summary, info = result_rows(method, sample, float(score_thr),
                                      text_list)
    info = dict(task=sample.task, **info)
    return result['visualization'][0], rows, info, summary


# ------------------------------------------------------------ the page
def _require_gradio():
    if gr is None:
        raise ImportError(INSTALL_HINT)
    return gr


def build_app(inferencer: UniPerceiverInferencer,
              examples: Optional[Sequence[str]] = None,
              model_info: str = '',
              warning: Optional[str] = None,
              preload: Optional[str] = None) -> 'gr.Blocks':
    """The page: image in, task, class names / texts, drawing and scores
    out. The model runs behind the ``/predict`` endpoint with the inputs
    ``(image, task, class_names, texts, score_thr, topk)`` and the outputs
    ``(drawing, table, json, summary)``.

    Args:
        inferencer: the model.
        examples: image paths offered under the upload box (default:
            :func:`example_images`).
        model_info: a line about the model (config, weights), shown on top.
        warning: shown on top in bold (e.g. random weights).
        preload: a task method: the page opens with the first example
            image and this task's result, computed before the page is
            served (for screenshots).

    Returns:
        gr.Blocks: call ``.launch()`` on it.
    """
    gr = _require_gradio()
    examples = example_images() if examples is None else list(examples)
    tasks = available_tasks(inferencer)
    if not tasks:
        raise ValueError('the model has no task the page can run')
    if preload is not None and (preload not in tasks or not examples):
        raise ValueError(f'preload={preload!r}: needs an example image and '
                         f'one of {", ".join(tasks)}')
    first_task = preload or tasks[0]
    defaults = {
        method: inferencer.classes(method)
        for method in NAMED_TASKS if method in tasks
    }
    lock = threading.Lock()
    initial = (None, None, None, None)
    if preload:
        rgb = np.asarray(Image.open(examples[0]).convert('RGB'))
        initial = predict(inferencer, rgb, preload, texts=EXAMPLE_TEXTS)

    def run(image, method, class_names, texts, score_thr, topk):
        try:
            return predict(inferencer, image, method, class_names, texts,
                           score_thr, topk, lock)
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err)) from err

    def placeholder(method: str) -> str:
        names = defaults.get(method)
        if method not in NAMED_TASKS:
            return f'not used by {method}'
        return 'default: ' + (', '.join(names) if names else
                              'none, type some')

    def hint(method):
        return gr.update(placeholder=placeholder(method))

    with gr.Blocks(title='Uni-Perceiver v2', analytics_enabled=False) as app:
        gr.Markdown('## Uni-Perceiver v2 — one model, every task\n'
                    'Detection, instance segmentation and classification '
                    'take any class names (open vocabulary); retrieval '
                    'ranks the texts you type by similarity to the image.')
        if model_info:
            gr.Markdown(model_info)
        if warning:
            gr.Markdown(f'**Warning: {warning}**')
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    value=examples[0] if preload else None, type='numpy',
                    image_mode='RGB', label='Image',
                    sources=['upload', 'clipboard'])
                if examples:
                    gr.Examples(examples=[[p] for p in examples],
                                inputs=[image], label='Examples')
                method = gr.Radio(
                    choices=[(n, m) for n, m in TASKS if m in tasks],
                    value=first_task, label='Task')
                class_names = gr.Textbox(
                    label='Class names (comma-separated; | between '
                    'synonyms)',
                    placeholder=placeholder(first_task))
                texts = gr.Textbox(
                    label='Texts to rank (retrieve; one per line)',
                    value=EXAMPLE_TEXTS if preload == 'retrieve' else None,
                    placeholder=EXAMPLE_TEXTS, lines=3)
                with gr.Row():
                    score_thr = gr.Slider(0.0, 1.0, value=0.3, step=0.05,
                                          label='Score threshold '
                                          '(detect, segment)')
                    topk = gr.Slider(1, 20, value=5, step=1,
                                     label='Top-k (classify)')
                button = gr.Button('Run', variant='primary')
            with gr.Column():
                drawing = gr.Image(value=initial[0], type='numpy',
                                   format='png', label='Result',
                                   interactive=False)
                summary = gr.Markdown(value=initial[3])
                table = gr.Dataframe(value=initial[1],
                                     headers=TABLE_HEADERS,
                                     label='Labels and scores',
                                     interactive=False, wrap=True)
                details = gr.JSON(value=initial[2], label='JSON')
        method.change(hint, inputs=method, outputs=class_names)
        inputs = [image, method, class_names, texts, score_thr, topk]
        outputs = [drawing, table, details, summary]
        button.click(run, inputs=inputs, outputs=outputs,
                     api_name='predict', concurrency_limit=1)
    return app


# ------------------------------------------------------------ command line
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Uni-Perceiver v2 web demo (Gradio): detection, '
        'instance segmentation, classification, captioning and retrieval '
        'with one model')
    parser.add_argument(
        'config', nargs='?', default=DEFAULT_CONFIG,
        help='config file or name (default: the `make demo` config)')
    parser.add_argument(
        '--weights',
        help='checkpoint (default: the newest of `make demo` in '
        'work_dirs/demo; none there: random weights)')
    parser.add_argument('--port', type=int, default=7860,
                        help='port to serve on (default: 7860)')
    parser.add_argument(
        '--host', default='127.0.0.1',
        help='address to bind (default: 127.0.0.1; 0.0.0.0 serves the '
        'network)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--preload', nargs='?', const='detect',
        choices=METHODS,
        help='open the page with the first example image and the result of '
        'this task (default: detect), e.g. for a screenshot')
    parser.add_argument(
        '--checkpoint-classes', action='store_true',
        help="default class names from the checkpoint's meta.dataset_meta "
        "instead of the config's")
    parser.add_argument(
        '--allow-partial', action='store_true',
        help='load only the tensors of --weights that fit the model')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='read --weights with weights_only=False (may run code from '
        'the file; only for files you trust)')
    return parser.parse_args(argv)


def _display(path: str) -> str:
    """A local path relative to the repository (when inside it)."""
    if not osp.exists(path):
        return path  # a URL or a config name
    rel = osp.relpath(osp.abspath(path), ROOT)
    return path if rel.startswith('..') else rel


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if gr is None:
        print(f'error: {INSTALL_HINT}', file=sys.stderr)
        return 2
    weights, warning = args.weights, None
    if weights is not None and not re.match(r'^\w+://', weights) \
            and not osp.isfile(weights):
        print(f'error: --weights {weights!r} does not exist',
              file=sys.stderr)
        return 2
    if weights is None:
        weights = find_checkpoint(DEFAULT_WORK_DIR)
        if weights is None:
            warning = (f'no checkpoint in {_display(DEFAULT_WORK_DIR)} '
                       '(run `make demo`) and no --weights: the model has '
                       'random weights, its predictions are meaningless')
            print(f'warning: {warning}', file=sys.stderr)
    inferencer = UniPerceiverInferencer(
        args.config,
        weights=weights,
        device=args.device,
        allow_partial=args.allow_partial,
        trust_checkpoint=True if args.trust_checkpoint else None,
        class_names='checkpoint' if args.checkpoint_classes else 'config')
    info = (f'Config `{_display(args.config)}` · weights '
            f'`{_display(weights) if weights else "random"}` · device '
            f'`{args.device}`')
    app = build_app(inferencer, model_info=info, warning=warning,
                    preload=args.preload)
    app.launch(server_name=args.host, server_port=args.port,
               show_error=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
