"""The Gradio app of a metric Space written by ``tinystories push metric``: evaluate's widget for the module."""

import os

import evaluate
from evaluate.utils import launch_gradio_widget

MODULE_FILE = "{{ module_file }}"  # the module beside this file (tinystories push metric fills it in)

module = evaluate.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), MODULE_FILE))
launch_gradio_widget(module)
