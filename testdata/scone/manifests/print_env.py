# scontain/scone_mesh_tutorial print_env.py (reference §1.3): prints the environment the CAS gave the program.
import os

for name in ("API_USER", "API_PASSWORD"):
    print(name, "is set" if os.environ.get(name) else "is not set")
