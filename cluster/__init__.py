"""Where jobs run: embedded local Ray, Ray on Slurm through submitit, profiles, and the dev
Slurm cluster used by the tests. It knows how to run a job, not what a job does."""
