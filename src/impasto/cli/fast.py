"""``impasto train``, ``apply``, ``styles`` and ``export``: feed-forward style networks
(Johnson, Alahi & Fei-Fei 2016) from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

from impasto.cli.exits import EXIT_OK
from impasto.cli.jobs import run_job
from impasto.cli.options import (
    OUTPUT_FOLDERS,
    absolute_profile,
    add_device,
    add_json,
    add_output_settings,
    add_painting_size,
    add_quiet,
    listed,
)
from impasto.config import (
    TRAIN_OBJECTIVES,
    ApplyConfig,
    Backend,
    ExportConfig,
    FastVariant,
    TrainConfig,
    TrainPrecision,
    Upsampling,
    choices,
    train_config,
)
from impasto.errors import InputError
from impasto.jobs import ApplyJob, ExportJob, MultiTrainJob, TrainJob
from impasto.style_spec import SHIPPED_ARBITRARY, is_path

# apply's --preserve-color: transfer's choices but "histogram", which only an optimisation can do.
APPLY_COLOUR = ("none", "luminance")

TRAIN_EXAMPLES = """\
examples:
  # a Starry Night network from a folder of photos, previews every 100 iterations
  impasto train starry_night.jpg --data photos/ -o starry_night.pt --preview-dir run/previews

  # the smaller network, shorter; continue later with --resume and more --iterations
  impasto train scream.jpg --data photos/ -o scream.pt --variant fast --iterations 1000
  impasto train scream.jpg --data photos/ -o scream.pt --variant fast --iterations 2000 --resume

  # one network for several paintings (Dumoulin et al. 2017), then a sixth painting's vector only
  impasto train starry_night.jpg the_scream.jpg shipwreck.jpg -o multi.pt --data photos/ --width 16 --kernel 5
  impasto train --add-style composition_vii.jpg --model multi.pt -o multi6.pt --data photos/ --iterations 2500
"""

APPLY_EXAMPLES = """\
examples:
  impasto apply --style starry_night photo.jpg -o photo_starry.jpg
  impasto apply --model scream.pt a.jpg b.jpg c.jpg -o stylised/ --preserve-color luminance
  impasto apply --style the_scream holiday_photos/ -o stylised/ --backend onnxruntime
  impasto apply --style shipwreck clip.mp4 -o clip_shipwreck.mp4 --size 720   # temporally consistent
  impasto apply --style shipwreck clip.mp4 -o clip_flicker.mp4 --no-temporal  # each frame on its own
  impasto apply --model scream.pt photo.jpg -o out.png --backend opencv --size 1024
  impasto apply --style-image painting.jpg photo.jpg -o out.jpg --strength 0.8
  impasto apply --model arbitrary.pt --style-image a.jpg --style-image b.jpg photos/ -o out/ --style-blend 0.7 0.3
  impasto apply --model multi.pt --style starry_night photo.jpg -o out.jpg --strength 0.6
  impasto apply --model multi.pt --style starry_night:0.7,the_scream:0.3 photo.jpg -o blend.jpg
"""

EXPORT_EXAMPLES = """\
examples:
  impasto export scream.pt -o scream.onnx                          # any input size
  impasto export starry_night -o starry_720p.onnx --input-height 720 --input-width 1280
  impasto export multi.pt --style the_scream -o scream.onnx       # one style of a multi-style model
  impasto export multi.pt --all-styles -o multi.onnx              # every style, chosen when it runs
  impasto export --style-image painting.jpg -o painting.onnx      # any painting, its style code baked in
"""


def register(sub: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("train", help="train a fast style network for one painting or several (Johnson et al. 2016; "
                       "Dumoulin et al. 2017)",
                       description="Train a feed-forward network that repaints any photo in one painting's style "
                       "in one pass (Johnson, Alahi & Fei-Fei 2016); for several paintings, one network with a "
                       "learned style vector per painting (Dumoulin, Shlens & Kudlur 2017); with --add-style, only "
                       "a new painting's vector for an existing multi-style model.",
                       epilog=TRAIN_EXAMPLES, formatter_class=formatter)
    add_train_arguments(p)
    p.set_defaults(run=run_train)
    p = sub.add_parser("apply", help="stylise photos with a trained network, in milliseconds",
                       description="Stylise photos with a shipped style or a trained model file.",
                       epilog=APPLY_EXAMPLES, formatter_class=formatter)
    add_apply_arguments(p)
    p.set_defaults(run=run_apply)
    p = sub.add_parser("styles", help="list the shipped fast styles", description="List the shipped fast styles "
                       "(or a model file's) and how each was trained.")
    p.add_argument("--model", type=Path, help="list this model file's styles instead of the shipped ones")
    p.add_argument("--json", action="store_true", help="print the styles on stdout as JSON instead: a list, one "
                   "object per style with its objective")
    p.set_defaults(run=run_styles)
    p = sub.add_parser("export", help="export a fast style network to ONNX (onnxruntime, OpenCV dnn)",
                       description="Write a network as an ONNX graph: RGB float32 in [0, 1], NCHW, in and out.",
                       epilog=EXPORT_EXAMPLES, formatter_class=formatter)
    p.add_argument("model", nargs="?", help="a model file, or a shipped style's name (with --style-image: an "
                   "arbitrary-style model file, by default the installed one)")
    p.add_argument("-o", "--output", type=Path, required=True, help=f"the .onnx file to write; {OUTPUT_FOLDERS}")
    p.add_argument("--style", help="a multi-style model's style, or a mix NAME:W,NAME:W, baked into the graph")
    p.add_argument("--style-image", type=Path, action="append", dest="style_images", metavar="PAINTING",
                   help="an arbitrary-style model: this painting's style code, baked into the graph; repeat to mix")
    p.add_argument("--style-blend", type=float, nargs="+", metavar="W", dest="style_weights",
                   help="weights of the --style-images, one each (normalised to sum 1; default equal)")
    add_painting_size(p)
    p.add_argument("--strength", type=float, default=1.0,
                   help="multi-style and arbitrary-style models: 0 = the photo, 1 = the full style (default: "
                   "%(default)g)")
    p.add_argument("--input-height", type=int, metavar="PX", help="fix the graph's input height in px, with "
                   "--input-width (default: any size)")
    p.add_argument("--input-width", type=int, metavar="PX", help="fix the graph's input width in px, with "
                   "--input-height (default: any size)")
    p.add_argument("--all-styles", action="store_true", help="a multi-style model (or the shipped one holding "
                   "the style named) as one graph with every style: inputs image and gammabeta, the styles' "
                   "vectors in its metadata; `impasto apply --model GRAPH.onnx --style NAME` runs it")
    add_json(p)
    add_quiet(p)
    p.set_defaults(run=run_export)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("style_images", type=Path, nargs="*", metavar="PAINTING",
                   help="the painting; several train one multi-style network together")
    p.add_argument("-o", "--output", type=Path, required=True, help=f"the model file to write (.pt); {OUTPUT_FOLDERS}")
    p.add_argument("--data", type=Path, required=True, metavar="DIR",
                   help="folder of training photos (.jpg, .png, .webp)")
    p.add_argument("--name", nargs="+", help="the styles' names stored in the model, one per painting (default: "
                   "the paintings' file names)")
    p.add_argument("--add-style", type=Path, nargs="+", metavar="PAINTING",
                   help="train only these paintings' style vectors into the multi-style --model, its convolutions "
                   "frozen (Dumoulin et al. 2017, §4)")
    p.add_argument("--model", type=Path, help="the multi-style model that --add-style extends")
    g = p.add_argument_group("network")
    g.add_argument("--variant", choices=choices(FastVariant), default=d.variant,
                   help="johnson: the paper's 32/64/128 channels, 5 residual blocks, 9x9 edges; fast: 16/32/64, "
                   "5 blocks; lite: 8/16/32/64, 3 blocks at 1/8 scale, 5x5 edges, the fastest (default: %(default)s)")
    g.add_argument("--width", type=int, help="the network's channels in its first layer (default: the variant's)")
    g.add_argument("--blocks", type=int, help="residual blocks (default: the variant's)")
    g.add_argument("--kernel", type=int, help="size of the first and last convolutions (default: the variant's)")
    g.add_argument("--upsample", choices=choices(Upsampling), help="how the decoder doubles its size: nearest "
                   "(the paper's resize-convolution) or bilinear (default: nearest)")
    g = p.add_argument_group("objective")
    g.add_argument("--objective", choices=tuple(TRAIN_OBJECTIVES),
                   help="relative: Johnson et al.'s layers, each term divided by its target's energy; gatys: "
                   "the batch average of the paper objective that `impasto transfer` minimises "
                   f"(default: {d.objective} for one painting; gatys, the only choice, for multi-style models)")
    g.add_argument("--content-weight", type=float, help=_preset_help("weight of the content term", "content_weight"))
    g.add_argument("--style-weight", type=float, help=_preset_help("weight of the style term", "style_weight"))
    g.add_argument("--tv-weight", type=float, help=_preset_help("total-variation weight", "tv_weight"))
    g.add_argument("--grid-weight", type=float, help="weight of a term against the pattern repeating at the network's "
                   "upsampling factor, its hatching (default: 0, off; in the TV term's units)")
    g.add_argument("--droplet-weight", type=float, help="weight of a term against droplets, dark ovals at the same "
                   "places in every output (default: 0, off)")
    g.add_argument("--content-layers", nargs="+", metavar="LAYER",
                   help=_preset_help("VGG-19 layers of the content term", "content_layers"))
    g.add_argument("--style-layers", nargs="+", metavar="LAYER",
                   help=_preset_help("VGG-19 layers of the style term", "style_layers"))
    g.add_argument("--style-layer-weights", nargs="+", type=float, metavar="W",
                   help="one per style layer (default: 1/(number of style layers) each)")
    g.add_argument("--style-size", type=int, default=d.style_size,
                   help="the paintings' long side in px; larger = bigger brush strokes (default: %(default)s)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--iterations", type=int, default=d.iterations, help="training iterations (default: %(default)s)")
    g.add_argument("--minutes", type=float, help="end after this many minutes of training and write the model "
                   "(default: no limit)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="photos per iteration (default: %(default)s)")
    g.add_argument("--crop-size", type=int, default=d.crop_size, help="square training crops in px (default: "
                   "%(default)s)")
    g.add_argument("--learning-rate", type=float, default=d.learning_rate,
                   help="Adam's learning rate; with --resume it replaces the checkpoint's (default: %(default)g)")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the initialisation and the batch order (default: %(default)s)")
    g.add_argument("--workers", type=int, default=d.workers,
                   help="processes decoding photos ahead; 0 = in the training process, best on a CPU; 4-8 keep "
                   "a GPU busy (default: %(default)s)")
    add_device(g, d.device)
    g.add_argument("--precision", choices=choices(TrainPrecision), default=d.precision,
                   help="auto: bf16 autocast on CPUs with native bf16 and on CUDA (default: %(default)s)")
    g = p.add_argument_group("validation, previews and checkpoints")
    g.add_argument("--holdout-percent", type=float, default=d.holdout_percent,
                   help="percent of the photos held out by a hash of their names (default: %(default)g)")
    g.add_argument("--previews", type=int, default=d.previews,
                   help="held-out photos in each preview and the validation loss (default: %(default)s)")
    g.add_argument("--preview-every", type=int, default=d.preview_every, metavar="N",
                   help="validate (and write a preview) every N iterations; 0 = never (default: %(default)s)")
    g.add_argument("--preview-dir", type=Path, metavar="DIR",
                   help="folder of the previews (default: OUTPUT's name + _previews)")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="N",
                   help="save a checkpoint every N iterations; 0 = never (default: %(default)s)")
    g.add_argument("--checkpoint", type=Path, metavar="FILE", help="checkpoint file (default: OUTPUT + .ckpt)")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    g.add_argument("--init-from", type=Path, metavar="MODEL",
                   help="continue the training of this multi-style model file (the same paintings and layout): its "
                   "weights and iteration count, Adam afresh; for a machine without the checkpoint")
    g = p.add_argument_group("messages")
    add_json(g)
    add_quiet(g)


def config_from_args(args: argparse.Namespace, multistyle: bool = False) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"objective"}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names and v is not None}
    return train_config(args.objective or ("gatys" if multistyle else TrainConfig().objective), **values)


def _preset_help(what: str, name: str) -> str:
    """``what`` and its default under each --objective."""
    def show(value: object) -> str:
        return listed(value) if isinstance(value, tuple) else f"{value:g}"

    values = [f"{show(TRAIN_OBJECTIVES[o].get(name, getattr(TrainConfig(), name)))} with {o}" for o in TRAIN_OBJECTIVES]
    return f"{what} (default: {', '.join(values)})"


def run_train(args: argparse.Namespace) -> int:
    output: Path = args.output
    paintings: list[Path] = args.style_images
    if args.add_style and paintings:
        raise InputError("--add-style: give the new paintings after --add-style only, not also as PAINTING")
    if args.add_style and args.model is None:
        raise InputError("--add-style: needs --model MULTI.pt, the multi-style model to extend")
    if args.model is not None and not args.add_style:
        raise InputError("--model: only with --add-style (train a new model from PAINTING ... otherwise)")
    if not paintings and not args.add_style:
        raise InputError("train: give the painting (or several, or --add-style PAINTING --model MULTI.pt)")
    multistyle = bool(args.add_style) or len(paintings) > 1
    preview_dir = args.preview_dir or output.with_name(output.stem + "_previews")
    config = config_from_args(args, multistyle)
    if not config.preview_every or not config.previews:
        preview_dir = None
    if args.init_from is not None and not (multistyle and not args.add_style):
        raise InputError("--init-from: continues a multi-style training (several paintings, no --add-style)")
    if multistyle:
        base = args.model.absolute() if args.model is not None else None
        init_from = args.init_from.absolute() if args.init_from is not None else None
        names = tuple(args.name) if args.name else None
        job: TrainJob | MultiTrainJob = MultiTrainJob(tuple(args.add_style or paintings), args.data, output, config,
                                                      names, base, preview_dir, args.checkpoint, args.resume,
                                                      init_from)
    else:
        if args.name and len(args.name) != 1:
            raise InputError(f"--name: {len(args.name)} names given for one painting")
        name = args.name[0] if args.name else None
        job = TrainJob(paintings[0], args.data, output, config, name, preview_dir, args.checkpoint, args.resume)
    return run_job(job, quiet=args.quiet, as_json=args.json)


def add_apply_arguments(p: argparse.ArgumentParser) -> None:
    d = ApplyConfig(style="-")
    p.add_argument("--style", help="a shipped style (see `impasto styles`), or a mix of a multi-style model's "
                   "styles NAME:WEIGHT,NAME:WEIGHT (weights normalised to sum to 1); with --model MULTI.pt, the "
                   "style or mix inside that file")
    p.add_argument("--model", type=Path, help="a model file written by `impasto train`")
    p.add_argument("photos", type=Path, nargs="+", metavar="INPUT",
                   help="photos, videos (.mp4, .mov, .avi, .mkv, .m4v) or folders of them")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output image or video for one input, or a folder (for several or a folder) that receives "
                   f"NAME_STYLE.png / .mp4; {OUTPUT_FOLDERS}")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="frames, or consecutive photos of one size, per network call (default: %(default)s)")
    p.add_argument("--backend", choices=choices(Backend), default=d.backend,
                   help="what runs the network: auto = a shipped style's photos on its ONNX graph with onnxruntime, "
                   "the rest on torch (default: %(default)s; onnxruntime and opencv need impasto[export])")
    p.add_argument("--preserve-color", choices=APPLY_COLOUR, default=APPLY_COLOUR[0],
                   help="keep the photos' colours: luminance = transfer the luminance only (default: %(default)s; "
                   "transfer's histogram needs an optimisation)")
    p.add_argument("--size", type=int, help="resize each photo to this long side first (default: as it is)")
    p.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=d.temporal,
                   help="videos: blend in the previous output warped by optical flow where it is reliable, "
                   "against flicker; --no-temporal stylises each frame on its own (default: on)")
    add_output_settings(p, d.output_profile, d.quality)
    add_json(p)
    add_quiet(p)
    g = p.add_argument_group("any painting (the installed arbitrary-style model, or --model ARBITRARY.pt from "
                             "`impasto train-arbitrary`)")
    g.add_argument("--style-image", type=Path, action="append", dest="style_images", metavar="PAINTING",
                   help="a painting to apply; repeat to mix several")
    g.add_argument("--style-blend", type=float, nargs="+", metavar="W", dest="style_weights",
                   help="weights of the --style-images, one each (normalised to sum 1; default equal)")
    add_painting_size(g)
    g.add_argument("--strength", type=float, default=d.strength,
                   help="multi-style and arbitrary-style models: 0 = the photo, 1 = the full style, in between "
                   "γ/β interpolated toward the identity (default: %(default)g)")


def run_apply(args: argparse.Namespace) -> int:
    if args.model is None and args.style is None and not args.style_images:
        raise InputError("apply: give --style NAME, --model FILE or --style-image PAINTING")
    # A model file by its absolute path, so that the job file runs from any folder; paintings
    # alone go to the installed arbitrary-style model.
    style = str(args.model.absolute()) if args.model is not None else args.style or SHIPPED_ARBITRARY
    mix = args.style if args.model is not None else None
    paintings = tuple(p.absolute() for p in args.style_images or ())
    weights = tuple(args.style_weights) if args.style_weights else None
    config = ApplyConfig(style, args.backend, args.preserve_color == "luminance", args.size, args.batch_size,
                         args.temporal, paintings, weights, args.strength, mix, args.style_size,
                         output_profile=absolute_profile(args.output_profile), bit_depth=args.bit_depth,
                         quality=args.quality)
    return run_job(ApplyJob(tuple(args.photos), args.output, config), quiet=args.quiet, as_json=args.json)


def run_styles(args: argparse.Namespace) -> int:
    from impasto.fast import styles
    from impasto.fast.arbitrary.model import describe_arbitrary

    listed = styles.describe_file(args.model) if args.model is not None else styles.shipped_styles()
    any_painting = styles.shipped_arbitrary() if args.model is None and styles.arbitrary_installed() else None
    if args.json:
        print(json.dumps(listed + ([describe_arbitrary(any_painting)] if any_painting else []), indent=2))
        return EXIT_OK
    if not listed and any_painting is None:
        print("no fast styles are installed; train one with `impasto train` and apply it with --model")
        return EXIT_OK
    print("| style | network | iterations | training | held-out loss |")
    print("|---|---|---|---|---|")
    for entry in listed:
        validation = (entry.get("training") or {}).get("validation")
        loss = validation.get("total") if isinstance(validation, dict) else validation
        print(f"| {entry['name'] or '(any painting)'} | {entry['architecture']} | {entry.get('iterations') or '-'} "
              f"| {entry['kind']} | {f'{loss:.4g}' if isinstance(loss, float) else '-'} |")
    for model_name, licence in {e["model"]: e.get("licence") for e in listed}.items():
        if licence:
            print(f"\nlicence ({model_name}): {licence}")
    if any_painting is not None:
        name = Path(any_painting.source).name
        print(f"\nany painting: impasto apply --style-image PAINTING (the installed arbitrary-style network "
              f"{name}, {any_painting.training.get('iterations', '?')} iterations)")
        if any_painting.licence:
            print(f"licence ({name}): {any_painting.licence}")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    # Files by their absolute paths, so that the job file runs from any folder; a style's name
    # stays a name (``style_spec.is_path`` is the one rule telling them apart).
    model = os.fspath(Path(args.model).absolute()) if args.model is not None and is_path(args.model) else args.model
    paintings = tuple(p.absolute() for p in args.style_images or ())
    weights = tuple(args.style_weights) if args.style_weights else None
    config = ExportConfig(model, args.style, paintings, weights, args.strength, args.input_height, args.input_width,
                          args.all_styles, args.style_size)
    return run_job(ExportJob(args.output, config), quiet=args.quiet, as_json=args.json)
