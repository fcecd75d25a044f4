# The tutorial's app.py, with the Eve() object exposed for gunicorn (app:app) instead of app.run().
import os

from eve import Eve

app = Eve(settings=os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.py"))
