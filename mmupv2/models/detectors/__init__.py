# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
from .class_agnostic_proposer import ClassAgnosticProposer

__all__ = ['ClassAgnosticProposer']
