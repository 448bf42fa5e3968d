# Copyright (c) mmupv2 contributors. Licensed under the Apache License 2.0.
