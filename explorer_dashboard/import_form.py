"""The Runs page's import form: ``explorer import`` from the browser (an encoder trained
elsewhere, or its features, made a run every page reads; :mod:`explorer.encoder_import`).

The package's modules are imported when the form is drawn, not with the Runs page: they bring
torch and torchvision, which the first page a visitor sees otherwise does without."""

from __future__ import annotations

import shlex

import streamlit as st

from explorer.errors import UserError
from explorer_dashboard.common import READ_ONLY_HELP, read_only, refusal, runs_dir

FEATURES = "(a features .npz: no network)"
EXAMPLE = "dataset=cifar10 data_root=~/data"


@st.cache_data(show_spinner=False)
def architectures() -> list[str]:
    """The choices: a features file, the project's backbones, torchvision's classifiers."""
    from explorer.models import list_backbones, torchvision_models

    return [FEATURES, *list_backbones(), *torchvision_models()]


def run_import(path: str, arch: str, settings: str, name: str) -> None:
    """Import, showing each stage and the time spent; then say what was read, or why not."""
    from explorer.encoder_import import describe, import_encoder

    if message := refusal("import encoders"):
        st.error(message)
        return
    if not path.strip():
        st.error("Name the file to import: a .pth, .pt, .ckpt or .safetensors of weights, or "
                 "a .npz of features, on the machine this dashboard runs on.")
        return
    try:
        overrides = shlex.split(settings)
    except ValueError as err:
        st.error(f"The settings do not read as key=value words ({err}); e.g. {EXAMPLE}")
        return
    with st.status("Importing…", expanded=True) as status, \
            st.spinner("Importing (the analysis takes a few seconds to minutes)…",
                       show_time=True):
        try:
            result = import_encoder(
                path.strip(), arch=None if arch == FEATURES else arch, overrides=overrides,
                name=name.strip() or None, runs_dir=runs_dir(),
                on_stage=lambda what: status.write(f"{what}…"))
        except UserError as err:
            status.update(label="Not imported", state="error")
            st.error(str(err))
            return
        status.update(label=f"Imported `{result.run.name}`", state="complete", expanded=False)
    st.session_state["selected_run"] = result.run.name
    st.success(f"Imported `{result.run.name}`: its Embeddings, Spectrum and Probe pages read it "
               "now.")
    st.code(describe(result), language=None)


def import_form() -> None:
    """The form: a file on this machine, its network, the data to read it on, a name."""
    st.caption("An encoder trained elsewhere (solo-learn, lightly, the paper's code, "
               "torchvision) as a run: its weights analysed on one of this explorer's data "
               "sets, or features you computed. `explorer import --help` does the same.")
    path = st.text_input("File on this machine", key="import-file",
                         placeholder="~/checkpoints/simclr-resnet18.ckpt or features.npz",
                         help=".pth/.pt/.ckpt (read weights-only: nothing in it is executed), "
                         ".safetensors, or .npz with features (N × d) and labels (N)")
    left, right = st.columns(2)
    arch = left.selectbox("Network", architectures(), key="import-arch",
                          help="the architecture the weights belong to: a backbone of this "
                          "explorer or any torchvision classification model (its last linear "
                          "layer removed)")
    name = right.text_input("Run name", key="import-name", placeholder="FILE-DATASET",
                            help="left empty: the file's name and the data set's")
    settings = st.text_input("Settings (key=value, as for explorer train)", key="import-set",
                             placeholder=EXAMPLE,
                             help="the data set to read the encoder on, and e.g. image_size, "
                             "loss=spectral mu=1 (how its projector's output is read)")
    if st.button("Import", key="import-go", help=READ_ONLY_HELP if read_only() else None):
        run_import(path, arch, settings, name)
