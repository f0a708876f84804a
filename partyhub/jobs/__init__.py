"""The render job, in one place: the `Render` model's lifecycle lives in partyhub/models/render.py;
here is what runs it. `dispatch` hands a committed render to a worker (Celery's `tasks`, or the
`embedded` worker inside the server), and `runner` claims it with its batch companions, loads its
`sources`, calls the engine (`generation`), `store`s the images and records them, while `watch`
reports progress and keeps the claims."""
