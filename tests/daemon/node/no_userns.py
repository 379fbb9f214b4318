"""Run `python -m kgen ARGS...` on a kernel that (for this process tree) has no user namespaces:
a real seccomp filter, inherited across exec, refuses unshare/clone of namespaces before kgen
starts, as on a machine with user.max_user_namespaces=0."""

import os
import sys

from kgen.core import isolation

isolation._check(isolation._prctl(isolation.PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
isolation._seccomp()
os.execv(sys.executable, [sys.executable, "-m", "kgen", *sys.argv[1:]])
