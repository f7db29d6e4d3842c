"""What many tests share; no test module imports from another.

actors     the demo users as engine actors
api        a bearer header for the JSON API
browser    log-in and log-out in Chromium (e2e)
clock      a clock the test moves, so timers come due without waiting
databases  prepared databases, the backend parameters, clean-up of committed rows
doors      RuntimeDoor and ApiDoor, the front doors of tests.cycle.Driver
html       pages parsed, elements selected by CSS, their text and URLs
pages      CSRF token, log-in and a logged-in client through the page forms
specs      process specs parsed straight from BPMN files
"""
