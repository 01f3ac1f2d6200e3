# What the host programs make under the deployment root is the connecting user's alone (0700
# directories, 0600 files): bundles hold the files an appspec installs 0600, and the logs and
# records say what runs where. What they make for the deployment's own use gets the session's
# umask back ($session_umask): installed files and their directories, the root's parents, a
# bundle's unpacked contents (inside the 0700 deployment-archive/, as the bundle has them), and
# whatever hooks write.
session_umask=$(umask)
umask 077
