"""The start-up files each runtime reads, written into an unpacked rootfs.

The builtin pipeline writes what the runtime's own pull would write: enroot's
`/etc/rc`, `/etc/environment`, `/etc/fstab` and `/etc/rc.local`
(`enroot_files`, after enroot's `src/docker.sh`), and Apptainer's
`/.singularity.d` with the SIF's metadata objects (`singularity_files`, after
Apptainer's `internal/pkg/build/`; the scripts themselves are Apptainer's own,
copied into `imgcache/backends/data/apptainer/` and rendered by
`apptainer_scripts`). Where imgcache deliberately differs, the module says so.
"""
