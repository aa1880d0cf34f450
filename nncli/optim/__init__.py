"""Update rules over the flat parameter vector, learning-rate schedules, gradient clipping."""
