"""Jobs that write to a cache: the queue, the job kinds, and how a result is published.

`states` holds what a job is (request, state, status snapshot, error), shared by
`queue`, which runs requests on worker threads, and `kinds/`, one module per job
kind (pull, import, save, add, and the maintenance actions), each given a
`context.JobContext` to work with (runner, progress, scratch); `pipeline` and `rootfs`
are the builtin pull (skopeo, umoci, the runtime's start-up files, mksquashfs);
`publish` writes a temp beside the target and links it into place; `locks`
keeps two admins from pulling one image at once; `credentials` hands a registry
password to a tool without a command line or log seeing it.
"""
